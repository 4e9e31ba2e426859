using System.Text;

namespace Nibble.Text.Tokenization;

/// <summary>
/// Unicode NFC (canonical decomposition, canonical ordering, canonical composition; UAX #15) from built-in tables,
/// because Nibble runs with InvariantGlobalization, where string.Normalize has no Unicode data and leaves text as is.
/// Tokenizers with an NFC normalizer (Qwen 2/2.5/3) need it. Text below U+0300 is always NFC and returns untouched.
/// The tables (UnicodeNfcData.cs) were generated with Python's unicodedata:
/// <code>
/// for cp in range(0x110000): ccc = unicodedata.combining(chr(cp)); d = unicodedata.decomposition(chr(cp))
///   canonical when d does not start with '&lt;'; excluded from composition when normalize('NFC', chr(cp)) != chr(cp)
/// </code>
/// </summary>
public static class UnicodeNfc
{
    const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28;
    const int NCount = VCount * TCount, SCount = LCount * NCount;
    const int None = 0x7FFFFFFF;

    static readonly Dictionary<int, (int First, int Second)> Decomp = BuildDecomp();
    static readonly Dictionary<long, int> Compose = BuildCompose();

    static Dictionary<int, (int, int)> BuildDecomp()
    {
        var d = new Dictionary<int, (int, int)>();
        var t = UnicodeNfcData.Decompositions;
        for (int i = 0; i < t.Length; i += 3) d[t[i]] = (t[i + 1], t[i + 2]);
        return d;
    }

    static Dictionary<long, int> BuildCompose()
    {
        var excluded = new HashSet<int>(UnicodeNfcData.CompositionExclusions);
        var c = new Dictionary<long, int>();
        var t = UnicodeNfcData.Decompositions;
        for (int i = 0; i < t.Length; i += 3)
            if (t[i + 2] != None && !excluded.Contains(t[i])) c[((long)t[i + 1] << 21) | (uint)t[i + 2]] = t[i];
        return c;
    }

    public static int CombiningClass(int cp)
    {
        var r = UnicodeNfcData.CombiningClassRanges;
        int lo = 0, hi = r.Length / 3 - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) / 2;
            if (cp < r[mid * 3]) hi = mid - 1;
            else if (cp > r[mid * 3 + 1]) lo = mid + 1;
            else return r[mid * 3 + 2];
        }
        return 0;
    }

    public static string Normalize(string s)
    {
        bool simple = true;
        foreach (char ch in s) if (ch >= 0x300) { simple = false; break; }
        if (simple) return s;

        // 1. Full canonical decomposition.
        var cps = new List<int>(s.Length + 8);
        for (int i = 0; i < s.Length; i++)
        {
            int cp = char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? char.ConvertToUtf32(s[i], s[++i]) : s[i];
            Decompose(cp, cps);
        }
        // 2. Canonical ordering: stable sort of each run of non-starters by combining class.
        for (int i = 0; i < cps.Count;)
        {
            if (CombiningClass(cps[i]) == 0) { i++; continue; }
            int j = i;
            while (j < cps.Count && CombiningClass(cps[j]) != 0) j++;
            if (j - i > 1)
            {
                var run = cps.GetRange(i, j - i).Select((cp, k) => (cp, k)).OrderBy(x => CombiningClass(x.cp)).ThenBy(x => x.k).Select(x => x.cp).ToList();
                for (int k = 0; k < run.Count; k++) cps[i + k] = run[k];
            }
            i = j;
        }
        // 3. Canonical composition.
        if (cps.Count > 0)
        {
            int starter = -1, lastClass = -1;
            var result = new List<int>(cps.Count);
            foreach (int cp in cps)
            {
                int cc = CombiningClass(cp);
                if (starter >= 0 && (lastClass < cc || (lastClass == 0 && result.Count - 1 == starter)) && TryCompose(result[starter], cp, out int composed))
                {
                    result[starter] = composed;
                    continue;
                }
                if (cc == 0) { starter = result.Count; lastClass = -1; }
                else lastClass = cc;
                result.Add(cp);
                if (cc == 0) lastClass = 0;
            }
            cps = result;
        }
        var sb = new StringBuilder(cps.Count);
        foreach (int cp in cps) sb.Append(char.ConvertFromUtf32(cp));
        return sb.ToString();
    }

    static void Decompose(int cp, List<int> output)
    {
        int sIndex = cp - SBase;
        if (sIndex >= 0 && sIndex < SCount)
        {
            output.Add(LBase + sIndex / NCount);
            output.Add(VBase + sIndex % NCount / TCount);
            if (sIndex % TCount != 0) output.Add(TBase + sIndex % TCount);
            return;
        }
        if (Decomp.TryGetValue(cp, out var d))
        {
            Decompose(d.First, output);
            if (d.Second != None) Decompose(d.Second, output);
            return;
        }
        output.Add(cp);
    }

    static bool TryCompose(int a, int b, out int composed)
    {
        int lIndex = a - LBase, vIndex = b - VBase;
        if (lIndex >= 0 && lIndex < LCount && vIndex >= 0 && vIndex < VCount)
        {
            composed = SBase + (lIndex * VCount + vIndex) * TCount;
            return true;
        }
        int sIndex = a - SBase, tIndex = b - TBase;
        if (sIndex >= 0 && sIndex < SCount && sIndex % TCount == 0 && tIndex > 0 && tIndex < TCount)
        {
            composed = a + tIndex;
            return true;
        }
        return Compose.TryGetValue(((long)a << 21) | (uint)b, out composed);
    }
}
