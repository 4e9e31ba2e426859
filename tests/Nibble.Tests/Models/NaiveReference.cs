using Nibble.Formats;

namespace Nibble.Tests.Models;

/// <summary>
/// A deliberately plain forward pass in double precision, written from the transformers modelling
/// code's equations (no blocking, no cache, no backend), to check the real model's plumbing:
/// qkv bias, q/k norm, GQA, RoPE, MoE routing and the shared expert.
/// </summary>
public sealed class NaiveReference(string directory)
{
    readonly ModelConfig _c = ModelConfig.Load(directory);

    public double[][] Logits(int[] tokens)
    {
        using var ck = SafetensorsCheckpoint.Open(directory);
        double[] W(string name)
        {
            var info = ck.GetInfo(name);
            if (info.DType == SafetensorsDType.F32) return ck.GetSpan<float>(name).ToArray().Select(v => (double)v).ToArray();
            return ck.GetSpan<ushort>(name).ToArray().Select(b => (double)BitConverter.Int32BitsToSingle(b << 16)).ToArray();
        }
        double[] Lin(double[] x, string name, int outF, bool bias = false)
        {
            var w = W(name + ".weight");
            int inF = x.Length;
            var y = new double[outF];
            for (int o = 0; o < outF; o++) { double s = 0; for (int i = 0; i < inF; i++) s += w[o * inF + i] * x[i]; y[o] = s; }
            if (bias) { var b = W(name + ".bias"); for (int o = 0; o < outF; o++) y[o] += b[o]; }
            return y;
        }
        double[] Norm(double[] x, double[] w, int offset = 0, int len = -1)
        {
            if (len < 0) len = x.Length;
            double ms = 0; for (int i = 0; i < len; i++) ms += x[offset + i] * x[offset + i];
            double inv = 1 / Math.Sqrt(ms / len + _c.RmsNormEps);
            var y = (double[])x.Clone();
            for (int i = 0; i < len; i++) y[offset + i] = x[offset + i] * inv * w[i];
            return y;
        }
        double Silu(double v) => v / (1 + Math.Exp(-v));
        double[] Mlp(double[] x, string gate, string up, string down, int size)
        {
            var g = Lin(x, gate, size); var u = Lin(x, up, size);
            for (int i = 0; i < size; i++) g[i] = Silu(g[i]) * u[i];
            return Lin(g, down, _c.HiddenSize);
        }

        int H = _c.HiddenSize, nh = _c.NumHeads, kvh = _c.NumKvHeads, d = _c.HeadDim, T = tokens.Length;
        var emb = W("model.embed_tokens.weight");
        var h = tokens.Select(t => emb.AsSpan(t * H, H).ToArray()).ToArray();
        var inv = Enumerable.Range(0, d / 2).Select(i => 1.0 / Math.Pow(_c.Rope.Theta, 2.0 * i / d)).ToArray();
        if (_c.Rope.Type == "llama3")
        {
            var r = _c.Rope;
            for (int i = 0; i < inv.Length; i++)
            {
                double wavelen = 2 * Math.PI / inv[i];
                double lowWavelen = r.OriginalMaxPositionEmbeddings / r.LowFreqFactor, highWavelen = r.OriginalMaxPositionEmbeddings / r.HighFreqFactor;
                if (wavelen < highWavelen) continue;
                if (wavelen > lowWavelen) { inv[i] /= r.Factor; continue; }
                double smooth = (r.OriginalMaxPositionEmbeddings / wavelen - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor);
                inv[i] = (1 - smooth) * inv[i] / r.Factor + smooth * inv[i];
            }
        }
        int window = _c.SlidingWindow ?? int.MaxValue;
        void Rope(double[] x, int heads, int pos)
        {
            for (int hh = 0; hh < heads; hh++)
                for (int i = 0; i < d / 2; i++)
                {
                    double c = Math.Cos(pos * inv[i]), s = Math.Sin(pos * inv[i]);
                    double a = x[hh * d + i], b = x[hh * d + i + d / 2];
                    x[hh * d + i] = a * c - b * s; x[hh * d + i + d / 2] = b * c + a * s;
                }
        }

        for (int l = 0; l < _c.NumLayers; l++)
        {
            string p = $"model.layers.{l}";
            var ln1 = W(p + ".input_layernorm.weight");
            var qs = new double[T][]; var ks = new double[T][]; var vs = new double[T][];
            for (int t = 0; t < T; t++)
            {
                var x = Norm(h[t], ln1);
                qs[t] = Lin(x, p + ".self_attn.q_proj", nh * d, _c.AttentionBias);
                ks[t] = Lin(x, p + ".self_attn.k_proj", kvh * d, _c.AttentionBias);
                vs[t] = Lin(x, p + ".self_attn.v_proj", kvh * d, _c.AttentionBias);
                if (_c.QkNorm)
                {
                    var qn = W(p + ".self_attn.q_norm.weight"); var kn = W(p + ".self_attn.k_norm.weight");
                    for (int hh = 0; hh < nh; hh++) qs[t] = Norm(qs[t], qn, hh * d, d);
                    for (int hh = 0; hh < kvh; hh++) ks[t] = Norm(ks[t], kn, hh * d, d);
                }
                Rope(qs[t], nh, t); Rope(ks[t], kvh, t);
            }
            for (int t = 0; t < T; t++)
            {
                var attn = new double[nh * d];
                for (int hh = 0; hh < nh; hh++)
                {
                    int g = hh / (nh / kvh);
                    int first = window == int.MaxValue ? 0 : Math.Max(0, t - window + 1);
                    var sc = new double[t + 1];
                    Array.Fill(sc, double.NegativeInfinity);
                    for (int j = first; j <= t; j++) { double s = 0; for (int i = 0; i < d; i++) s += qs[t][hh * d + i] * ks[j][g * d + i]; sc[j] = s / Math.Sqrt(d); }
                    double mx = sc.Max(); double sum = 0;
                    for (int j = first; j <= t; j++) { sc[j] = Math.Exp(sc[j] - mx); sum += sc[j]; }
                    for (int j = first; j <= t; j++) for (int i = 0; i < d; i++) attn[hh * d + i] += sc[j] / sum * vs[j][g * d + i];
                }
                var o = Lin(attn, p + ".self_attn.o_proj", H);
                for (int i = 0; i < H; i++) h[t][i] += o[i];
            }
            var ln2 = W(p + ".post_attention_layernorm.weight");
            for (int t = 0; t < T; t++)
            {
                var x = Norm(h[t], ln2);
                double[] y;
                if (_c.Moe is { } moe && moe.IsSparseLayer(l))
                {
                    bool mixtral = _c.Family == ModelFamily.Mixtral;
                    string m = p + (mixtral ? ".block_sparse_moe" : ".mlp");
                    var logits = Lin(x, m + ".gate", moe.NumExperts);
                    double mx = logits.Max();
                    var prob = logits.Select(v => Math.Exp(v - mx)).ToArray(); double z = prob.Sum();
                    for (int e = 0; e < prob.Length; e++) prob[e] /= z;
                    var top = Enumerable.Range(0, prob.Length).OrderByDescending(e => prob[e]).ThenBy(e => e).Take(moe.TopK).ToArray();
                    double norm = moe.NormTopKProb ? top.Sum(e => prob[e]) : 1;
                    y = new double[H];
                    foreach (var e in top)
                    {
                        var ye = mixtral
                            ? Mlp(x, $"{m}.experts.{e}.w1", $"{m}.experts.{e}.w3", $"{m}.experts.{e}.w2", moe.ExpertIntermediateSize)
                            : Mlp(x, $"{m}.experts.{e}.gate_proj", $"{m}.experts.{e}.up_proj", $"{m}.experts.{e}.down_proj", moe.ExpertIntermediateSize);
                        for (int i = 0; i < H; i++) y[i] += prob[e] / norm * ye[i];
                    }
                    if (_c.Family == ModelFamily.Qwen2Moe && moe.SharedExpertIntermediateSize > 0)
                    {
                        var ys = Mlp(x, m + ".shared_expert.gate_proj", m + ".shared_expert.up_proj", m + ".shared_expert.down_proj", moe.SharedExpertIntermediateSize);
                        double gate = 1 / (1 + Math.Exp(-Lin(x, m + ".shared_expert_gate", 1)[0]));
                        for (int i = 0; i < H; i++) y[i] += gate * ys[i];
                    }
                }
                else y = Mlp(x, p + ".mlp.gate_proj", p + ".mlp.up_proj", p + ".mlp.down_proj", _c.IntermediateSize);
                for (int i = 0; i < H; i++) h[t][i] += y[i];
            }
        }
        var fn = W("model.norm.weight");
        string head = _c.TieWordEmbeddings || !ck.Contains("lm_head.weight") ? "model.embed_tokens" : "lm_head";
        return h.Select(x => Lin(Norm(x, fn), head, _c.VocabSize)).ToArray();
    }
}
