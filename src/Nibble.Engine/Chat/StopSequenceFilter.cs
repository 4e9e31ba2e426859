namespace Nibble.Engine.Chat;

/// <summary>
/// Streams text while watching for stop strings that may straddle pieces: it holds back the longest tail
/// that could still begin a stop string, and cuts the text right before the first complete match.
/// </summary>
public sealed class StopSequenceFilter(IReadOnlyList<string> stops)
{
    readonly string[] _stops = stops.Where(s => s.Length > 0).ToArray();
    string _pending = "";

    public bool Stopped { get; private set; }

    /// <summary>Adds a piece; returns the text that is safe to emit now.</summary>
    public string Push(string piece, out bool stopped)
    {
        stopped = Stopped;
        if (Stopped) return "";
        _pending += piece;
        if (_stops.Length == 0) { var all = _pending; _pending = ""; return all; }

        int cut = -1;
        foreach (var s in _stops)
        {
            int i = _pending.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && (cut < 0 || i < cut)) cut = i;
        }
        if (cut >= 0)
        {
            Stopped = stopped = true;
            string before = _pending[..cut];
            _pending = "";
            return before;
        }
        int hold = 0;
        foreach (var s in _stops)
            for (int len = Math.Min(s.Length - 1, _pending.Length); len > hold; len--)
                if (_pending.AsSpan(_pending.Length - len).SequenceEqual(s.AsSpan(0, len))) { hold = len; break; }
        string emit = _pending[..^hold];
        _pending = _pending[^hold..];
        return emit;
    }

    /// <summary>The held-back tail once the stream ends without a stop.</summary>
    public string Flush()
    {
        string rest = Stopped ? "" : _pending;
        _pending = "";
        return rest;
    }
}
