using Nibble.Numerics;
using Nibble.Backend;
using Nibble.Models;

namespace Nibble.Quantization.Awq;

/// <summary>
/// AWQ as llm-compressor does it (w4a8-spec.md §4), run block by block over a loaded model:
/// the calibration sequences are embedded once and their residual streams cached; for each decoder layer the
/// sub-blocks run on those cached inputs with an <see cref="ActivationStatistics"/> observer (x_mean over the
/// included tokens), each mapping's grid of scales is evaluated by the block-output MSE over the included tokens,
/// the best scale is folded (previous RMSNorm or linear ÷ s, balance layers × s), and the streams advance to the next
/// layer. Only one layer's activations live at a time; weights stay memory-mapped until a layer is smoothed.
/// Mappings: input_layernorm → q,k,v; v_proj → o_proj (skipped under GQA, as
/// llm-compressor does); post_attention_layernorm → gate,up (MoE: the router and every expert's gate/up, plus
/// Qwen2-MoE's shared expert and its gate — every reader of the norm must be balanced); up → down per MLP/expert.
/// Masked tokens still run through the model (attention sees them) but add nothing to statistics or losses; a masked
/// token routed to an expert adds nothing to that expert's down-projection statistics.
/// </summary>
public static class AwqCalibrator
{
    sealed record Balance(string Name, Func<ILinear> Get, Action<ILinear> Set, bool Quantized);

    public static IReadOnlyList<AwqMappingResult> Run(CausalLM model, IReadOnlyList<CalibrationSequence> data, AwqOptions? options = null,
        Action<int, LayerInputs?>? layerDone = null, IProgress<AwqProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new AwqOptions();
        CalibrationSet.Validate(data, "the calibration set");
        if (model.EmbedTokens is not HostTensor)
            throw new NibbleException("AWQ calibration runs on the CPU backend; load the model with CpuBackend.");
        int maxT = data.Max(s => s.Ids.Length);
        if (maxT > model.Config.MaxPositionEmbeddings)
            throw new NibbleException($"A calibration sequence of {maxT} tokens exceeds the model's context of {model.Config.MaxPositionEmbeddings}; use --calib-length {model.Config.MaxPositionEmbeddings} or less.");
        foreach (var slot in ModelLinears.Enumerate(model).Where(s => s.Quantize))
        {
            int k = slot.Get().InFeatures;
            if (k % options.GroupSizeFor(k) != 0)
                throw new NibbleException($"'{slot.Name}' has K = {k} input features, not a multiple of the group size {options.GroupSizeFor(k)}; use the channel-wise scheme or a model whose sizes are multiples of 128.");
        }

        var run = new Runner(model, data, options, progress, cancellationToken, maxT);
        var results = new List<AwqMappingResult>();
        for (int i = 0; i < model.Layers.Count; i++)
        {
            var inputs = options.CaptureInputRows > 0 ? new LayerInputs() : null;
            results.AddRange(run.Layer(model.Layers[i], inputs));
            layerDone?.Invoke(i, inputs);
        }
        return results;
    }

    /// <summary>Mappings per layer times grid points: the progress total.</summary>
    static int CandidatesPerLayer(DecoderLayer layer, int grid)
    {
        int mappings = 2 + (layer.Attention.VProj.OutFeatures == layer.Attention.OProj.InFeatures ? 1 : 0);
        mappings += layer.Mlp switch { MoeBlock m => m.Experts.Count + (m.SharedExpert is null ? 0 : 1), _ => 1 };
        return mappings * grid;
    }

    sealed class Runner
    {
        readonly CausalLM _model;
        readonly IBackend _backend;
        readonly IReadOnlyList<CalibrationSequence> _data;
        readonly AwqOptions _options;
        readonly IProgress<AwqProgress>? _progress;
        readonly CancellationToken _ct;
        readonly KvCache _cache;
        readonly float[][] _hidden;
        readonly int[][] _included;
        readonly int _h;
        readonly IReadOnlyList<AwqGrid.Candidate> _grid;
        readonly int _total;
        int _done;

        public Runner(CausalLM model, IReadOnlyList<CalibrationSequence> data, AwqOptions options, IProgress<AwqProgress>? progress, CancellationToken ct, int maxT)
        {
            (_model, _backend, _data, _options, _progress, _ct) = (model, model.Backend, data, options, progress, ct);
            _cache = model.CreateCache(maxT);
            _h = model.Config.HiddenSize;
            _hidden = data.Select(s => model.Embed(s.Ids).ToArray()).ToArray();
            _included = data.Select(s => Enumerable.Range(0, s.Ids.Length).Where(s.Includes).ToArray()).ToArray();
            _grid = AwqGrid.Candidates(options.Duo, options.GridPoints);
            _total = model.Layers.Sum(l => CandidatesPerLayer(l, _grid.Count));
        }

        long IncludedTokens => _included.Sum(r => (long)r.Length);

        /// <summary>Searches and smooths one layer; fills <paramref name="inputs"/> (when given) with its linears' smoothed inputs.</summary>
        public List<AwqMappingResult> Layer(DecoderLayer layer, LayerInputs? inputs)
        {
            int cap = _options.CaptureInputRows;
            var results = new List<AwqMappingResult>();
            string stage = $"AWQ layer {layer.Index + 1}/{_model.Layers.Count}";
            var attn = layer.Attention;
            int n = _data.Count;

            // Attention: statistics and reference outputs on the cached inputs.
            var stats = new ActivationStatistics();
            string q = attn.Prefix + ".q_proj", o = attn.Prefix + ".o_proj";
            stats.Track(q, _h);
            bool vo = attn.VProj.OutFeatures == attn.OProj.InFeatures;
            if (vo || inputs is not null) stats.Track(o, attn.OProj.InFeatures, captureRows: true);
            var normed = new float[n][];
            var reference = new float[n][];
            for (int s = 0; s < n; s++)
            {
                normed[s] = Norm(_hidden[s], layer.InputNorm);
                stats.Mask = _data[s].Mask;
                reference[s] = Attention(attn, normed[s], stats);
            }
            double AttentionLoss()
            {
                double sum = 0;
                for (int s = 0; s < n; s++) sum += SquaredError(Attention(attn, normed[s], null), reference[s], _included[s], _h);
                return sum / (IncludedTokens * (double)_h);
            }
            results.Add(Search($"{attn.Prefix}: input_layernorm → q_proj, k_proj, v_proj", stage, stats.MeanAbs(q),
                [Slot(attn.Prefix + ".q_proj", () => attn.QProj, l => attn.QProj = l), Slot(attn.Prefix + ".k_proj", () => attn.KProj, l => attn.KProj = l),
                 Slot(attn.Prefix + ".v_proj", () => attn.VProj, l => attn.VProj = l)],
                AttentionLoss, s => DivideNorm(layer.InputNorm, s), stats.Count(q)));
            if (inputs is not null)
            {
                // q/k/v read the stream normed with the smoothed (divided) norm weights.
                var rowsIn = new float[IncludedTokens * _h];
                long filled = 0;
                for (int s = 0; s < n; s++)
                {
                    var x = Norm(_hidden[s], layer.InputNorm);
                    foreach (int t in _included[s]) { Array.Copy(x, (long)t * _h, rowsIn, filled * _h, _h); filled++; }
                }
                inputs.Add(LinearInput.Take(rowsIn, (int)filled, _h, cap), attn.Prefix + ".q_proj", attn.Prefix + ".k_proj", attn.Prefix + ".v_proj");
            }
            float[]? voScales = null;
            if (vo)
                results.Add(SearchLinear($"{attn.Prefix}: v_proj → o_proj", stage, stats, o,
                    Slot(o, () => attn.OProj, l => attn.OProj = l), Slot(attn.Prefix + ".v_proj", () => attn.VProj, l => attn.VProj = l), s => voScales = s));
            else
                results.Add(new AwqMappingResult($"{attn.Prefix}: v_proj → o_proj", 0, 0, false, 0, 0, 0,
                    $"skipped: v_proj has {attn.VProj.OutFeatures} outputs, o_proj {attn.OProj.InFeatures} inputs (grouped-query attention)"));
            if (inputs is not null)
                inputs.Add(LinearInput.Take(stats.CapturedRows(o), (int)stats.Count(o), attn.OProj.InFeatures, cap, voScales), o);
            for (int s = 0; s < n; s++) Add(_hidden[s], reference[s]);
            normed = reference = null!;

            // MLP / MoE: per-token, so the search runs on the included rows only.
            var mlp = layer.Mlp;
            var full = new float[n][];
            long rows = IncludedTokens;
            var xIncluded = new float[rows * _h];
            long at = 0;
            for (int s = 0; s < n; s++)
            {
                var x = Norm(_hidden[s], layer.PostAttentionNorm);
                full[s] = Ffn(mlp, x, _data[s].Ids.Length, null);
                foreach (int t in _included[s]) { Array.Copy(x, (long)t * _h, xIncluded, at * _h, _h); at++; }
            }
            var mlpStats = new ActivationStatistics();
            var (inputName, balance, gated) = MlpMapping(mlp);
            mlpStats.Track(inputName, _h);
            foreach (var g in gated)
            {
                mlpStats.Track(g.DownName, g.DownProj.InFeatures, captureRows: true);
                if (inputs is not null) mlpStats.Track(g.GateName, _h, captureRows: true);
            }
            var mlpReference = Ffn(mlp, xIncluded, (int)rows, mlpStats);
            double MlpLoss() => SquaredError(Ffn(mlp, xIncluded, (int)rows, null), mlpReference, null, _h) / (rows * (double)_h);
            string prefix = $"model.layers.{layer.Index}";
            float[]? normScales = null;
            results.Add(Search($"{prefix}: post_attention_layernorm → {Describe(mlp)}", stage, mlpStats.MeanAbs(inputName), balance,
                MlpLoss, s => { DivideNorm(layer.PostAttentionNorm, s); normScales = s; }, mlpStats.Count(inputName)));
            xIncluded = mlpReference = null!;
            foreach (var g in gated)
            {
                float[]? udScales = null;
                results.Add(SearchLinear($"{g.UpName} → {g.DownName}", stage, mlpStats, g.DownName,
                    Slot(g.DownName, () => g.DownProj, l => g.DownProj = l), Slot(g.UpName, () => g.UpProj, l => g.UpProj = l), s => udScales = s));
                if (inputs is null) continue;
                // Each expert's gate/up see only the included rows routed to it, divided by the norm's smoothing scale.
                if (mlpStats.Count(g.GateName) is > 0 and var gateRows)
                    inputs.Add(LinearInput.Take(mlpStats.CapturedRows(g.GateName), (int)gateRows, _h, cap, normScales), g.GateName, g.UpName);
                if (mlpStats.Count(g.DownName) is > 0 and var downRows)
                    inputs.Add(LinearInput.Take(mlpStats.CapturedRows(g.DownName), (int)downRows, g.DownProj.InFeatures, cap, udScales), g.DownName);
            }
            for (int s = 0; s < n; s++) Add(_hidden[s], full[s]);
            return results;
        }

        static Balance Slot(string name, Func<ILinear> get, Action<ILinear> set, bool quantized = true) => new(name, get, set, quantized);

        static string Describe(IFeedForward mlp) => mlp switch
        {
            MoeBlock m => $"router, {m.Experts.Count} experts' gate/up" + (m.SharedExpert is null ? "" : ", shared expert + gate"),
            _ => "gate_proj, up_proj",
        };

        /// <summary>The norm → MLP mapping: whose input statistics to use, every reader of the norm, and the gated MLPs (for up → down).</summary>
        static (string InputName, List<Balance> Balance, List<GatedMlp> Gated) MlpMapping(IFeedForward mlp)
        {
            var balance = new List<Balance>();
            var gated = new List<GatedMlp>();
            void AddGated(GatedMlp g)
            {
                balance.Add(Slot(g.GateName, () => g.GateProj, l => g.GateProj = l));
                balance.Add(Slot(g.UpName, () => g.UpProj, l => g.UpProj = l));
                gated.Add(g);
            }
            switch (mlp)
            {
                case GatedMlp g: AddGated(g); return (g.GateName, balance, gated);
                case MoeBlock m:
                    balance.Add(Slot(m.RouterName, () => m.Router, l => m.Router = l, quantized: false));
                    foreach (var e in m.Experts) AddGated(e);
                    if (m.SharedExpert is { } shared) AddGated(shared);
                    if (m.SharedExpertGate is not null)
                        balance.Add(Slot(m.SharedExpertGateName!, () => m.SharedExpertGate!, l => m.SharedExpertGate = l, quantized: false));
                    return (m.RouterName, balance, gated);
                default: throw new NibbleException($"AWQ does not know the MLP type {mlp.GetType().Name}; use a supported architecture.");
            }
        }

        /// <summary>A mapping whose parent is one linear (v → o, up → down): the loss is that linear's output on its captured included rows.</summary>
        AwqMappingResult SearchLinear(string name, string stage, ActivationStatistics stats, string linearName, Balance balance, Balance previous, Action<float[]>? applied = null)
        {
            long count = stats.Count(linearName);
            if (count == 0)
            {
                Advance(stage, _grid.Count);
                return new AwqMappingResult(name, 0, 0, false, 0, 0, 0, "skipped: no included token reached this layer");
            }
            var x = stats.CapturedRows(linearName);
            var layer = balance.Get();
            int rows = (int)count, outF = layer.OutFeatures;
            var reference = Linear(layer, x, rows);
            double Loss() => SquaredError(Linear(balance.Get(), x, rows), reference, null, outF) / (rows * (double)outF);
            return Search(name, stage, stats.MeanAbs(linearName), [balance], Loss, s => { DivideRows(previous, s); applied?.Invoke(s); }, count);
        }

        AwqMappingResult Search(string name, string stage, float[] xMean, List<Balance> balance, Func<double> loss, Action<float[]> smooth, long tokens)
        {
            var originals = balance.Select(b => b.Get()).ToList();
            var dense = balance.Select(b => ModelLinears.Dense(b.Get(), b.Name)).ToList();
            int k = originals[0].InFeatures;
            var quantized = balance.Select((b, i) => (b, i)).Where(p => p.b.Quantized).Select(p => (dense[p.i].Weight, originals[p.i].OutFeatures)).ToList();
            var wMean = AwqGrid.WeightMeans(quantized, k, _options.GroupSizeFor(k));

            int best = -1;
            double bestLoss = double.PositiveInfinity, identityLoss = double.NaN;
            float[]? bestScales = null;
            for (int c = 0; c < _grid.Count; c++)
            {
                _ct.ThrowIfCancellationRequested();
                var s = AwqGrid.Scales(_grid[c], xMean, wMean);
                for (int i = 0; i < balance.Count; i++)
                    if (balance[i].Quantized)
                        balance[i].Set(AwqCandidates.Build(_backend, dense[i].Weight, originals[i].OutFeatures, k, dense[i].Bias, s, _options));
                double l = loss();
                if (c == 0) identityLoss = l;
                if (double.IsFinite(l) && l < bestLoss) (best, bestLoss, bestScales) = (c, l, s);
                Advance(stage, 1);
            }
            for (int i = 0; i < balance.Count; i++) balance[i].Set(originals[i]);
            if (bestScales is null)
                return new AwqMappingResult(name, 0, 0, false, double.NaN, identityLoss, tokens, "skipped: no candidate gave a finite loss");

            for (int i = 0; i < balance.Count; i++)
            {
                var w = AwqCandidates.ScaleColumns(dense[i].Weight, originals[i].OutFeatures, k, bestScales);
                // Layers that stay bf16 (router, shared-expert gate) are stored in bf16: round now so the in-memory model is the checkpoint.
                if (!balance[i].Quantized) RoundBf16(w);
                balance[i].Set(DenseLinear.FromFloat(_backend, w, originals[i].OutFeatures, k, dense[i].Bias));
            }
            smooth(bestScales);
            return new AwqMappingResult(name, best, _grid[best].Alpha, _grid[best].Duo, bestLoss, identityLoss, tokens);
        }

        void Advance(string stage, int units)
        {
            _done += units;
            _progress?.Report(new AwqProgress(stage, _done, _total));
        }

        /// <summary>RMSNorm weight ÷ s, rounded to bf16 as the checkpoint stores it.</summary>
        static void DivideNorm(NormWeight norm, float[] s)
        {
            for (int i = 0; i < s.Length; i++) norm.Values[i] = BFloat16.Round(norm.Values[i] / s[i]);
            norm.Refresh();
        }

        /// <summary>The previous linear's output rows (and bias) ÷ s.</summary>
        void DivideRows(Balance previous, float[] s)
        {
            var layer = previous.Get();
            var (w, bias) = ModelLinears.Dense(layer, previous.Name);
            int k = layer.InFeatures;
            for (int r = 0; r < s.Length; r++)
            {
                for (int j = 0; j < k; j++) w[r * k + j] /= s[r];
                if (bias is not null) bias[r] /= s[r];
            }
            previous.Set(DenseLinear.FromFloat(_backend, w, layer.OutFeatures, k, bias));
        }

        static void RoundBf16(float[] w)
        {
            for (int i = 0; i < w.Length; i++) w[i] = BFloat16.Round(w[i]);
        }

        float[] Norm(float[] hidden, NormWeight norm)
        {
            int t = hidden.Length / _h;
            var output = _backend.Zeros(t, _h);
            _backend.RmsNorm(_backend.FromHost(hidden, t, _h), norm.Tensor, norm.Eps, output);
            return output.ToArray();
        }

        float[] Attention(AttentionBlock attn, float[] x, IActivationObserver? observer)
        {
            int t = x.Length / _h;
            var output = _backend.Zeros(t, _h);
            attn.Forward(_backend.FromHost(x, t, _h), new ForwardContext(ForwardContext.Range(0, t), _cache, observer), output);
            return output.ToArray();
        }

        /// <summary>The MLP / MoE over <paramref name="rows"/> rows of x, in chunks (bounded temporaries).</summary>
        float[] Ffn(IFeedForward mlp, float[] x, int rows, IActivationObserver? observer)
        {
            var result = new float[(long)rows * _h];
            for (int start = 0; start < rows; start += _options.ChunkRows)
            {
                int c = Math.Min(_options.ChunkRows, rows - start);
                var chunk = x.AsSpan(start * _h, c * _h).ToArray();
                var output = _backend.Zeros(c, _h);
                mlp.Forward(_backend.FromHost(chunk, c, _h), new ForwardContext(ForwardContext.Range(0, c), _cache, observer), output);
                output.CopyTo(result.AsSpan(start * _h, c * _h));
            }
            return result;
        }

        float[] Linear(ILinear layer, float[] x, int rows)
        {
            int k = layer.InFeatures, n = layer.OutFeatures;
            var result = new float[(long)rows * n];
            for (int start = 0; start < rows; start += _options.ChunkRows)
            {
                int c = Math.Min(_options.ChunkRows, rows - start);
                var output = _backend.Zeros(c, n);
                layer.Forward(_backend.FromHost(x.AsSpan(start * k, c * k).ToArray(), c, k), output);
                output.CopyTo(result.AsSpan(start * n, c * n));
            }
            return result;
        }

        /// <summary>Σ (a − b)² over the given rows (all rows when null).</summary>
        static double SquaredError(float[] a, float[] b, int[]? rows, int width)
        {
            double sum = 0;
            if (rows is null)
            {
                for (long i = 0; i < a.LongLength; i++) { double d = a[i] - b[i]; sum += d * d; }
                return sum;
            }
            foreach (int r in rows)
                for (int i = r * width; i < (r + 1) * width; i++) { double d = a[i] - b[i]; sum += d * d; }
            return sum;
        }

        static void Add(float[] x, float[] delta)
        {
            for (int i = 0; i < x.Length; i++) x[i] += delta[i];
        }
    }
}
