namespace Nibble.Text.Tokenization;

/// <summary>
/// The GPT-2 byte-to-unicode table that byte-level BPE vocabularies are written in: printable Latin-1 bytes map
/// to themselves, the other 68 bytes to U+0100 onwards in byte order (space becomes 'Ġ', newline 'Ċ').
/// </summary>
public static class ByteLevelAlphabet
{
    static readonly char[] ByteToChar = BuildByteToChar();
    static readonly Dictionary<char, byte> CharToByte = BuildCharToByte();

    public static char ToChar(byte b) => ByteToChar[b];

    public static bool TryGetByte(char c, out byte b) => CharToByte.TryGetValue(c, out b);

    /// <summary>The byte-level spelling of a text's UTF-8 bytes (what vocabulary entries look like).</summary>
    public static string Encode(ReadOnlySpan<char> text)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(text.ToArray());
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>
    /// Appends a token's bytes the way the Hugging Face ByteLevel decoder does: every character through the table,
    /// or, when any character is outside it (added tokens such as "&lt;｜User｜&gt;"), the token's own UTF-8 bytes.
    /// </summary>
    public static void AppendTokenBytes(string token, List<byte> destination)
    {
        foreach (char c in token)
            if (!CharToByte.ContainsKey(c)) { destination.AddRange(System.Text.Encoding.UTF8.GetBytes(token)); return; }
        foreach (char c in token) destination.Add(CharToByte[c]);
    }

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    static Dictionary<char, byte> BuildCharToByte()
    {
        var d = new Dictionary<char, byte>(256);
        for (int b = 0; b < 256; b++) d[ByteToChar[b]] = (byte)b;
        return d;
    }
}
