using System.Globalization;
using System.Text;

namespace Nibble.Text.Templates;

internal enum TokenType { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, Eof }

internal readonly record struct JinjaToken(TokenType Type, string Value, int Line)
{
    public bool Is(TokenType t, string v) => Type == t && Value == v;
    public bool IsName(string v) => Type == TokenType.Name && Value == v;
    public bool IsOp(string v) => Type == TokenType.Operator && Value == v;
    public override string ToString() => Type == TokenType.Eof ? "end of template" : $"'{Value}'";
}

/// <summary>
/// Jinja2's lexer as transformers configures it (trim_blocks, lstrip_blocks, keep_trailing_newline off):
/// newlines normalised to \n, one trailing newline dropped, <c>-</c>/<c>+</c> whitespace control, raw blocks.
/// Follows jinja2/lexer.py's rules (learned from, not copied), including its <c>line_starting</c> subtlety for lstrip.
/// </summary>
internal static class JinjaLexer
{
    static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "=", "<", ">", ";"];

    public static List<JinjaToken> Tokenize(string source)
    {
        source = NormalizeNewlines(source);
        var tokens = new List<JinjaToken>();
        int pos = 0, line = 1;
        bool lineStarting = true;
        while (pos < source.Length)
        {
            int tagAt = source.IndexOf('{', pos);
            while (tagAt >= 0 && (tagAt + 1 >= source.Length || source[tagAt + 1] is not ('{' or '%' or '#')))
                tagAt = source.IndexOf('{', tagAt + 1);
            if (tagAt < 0)
            {
                AddData(tokens, source[pos..], ref line);
                break;
            }
            char kind = source[tagAt + 1];
            int after = tagAt + 2;
            char sign = after < source.Length && source[after] is '-' or '+' ? source[after] : '\0';
            if (sign != '\0') after++;
            string text = source[pos..tagAt];
            int rawBodyStart = 0;
            bool isRaw = kind == '%' && IsRawBegin(source, after, out rawBodyStart);
            if (sign == '-') text = text.TrimEnd(PyWhitespace);
            else if (sign != '+' && kind != '{')
            {
                int lPos = text.LastIndexOf('\n') + 1;
                if ((lPos > 0 || lineStarting) && lPos < text.Length && IsAllWhitespace(text, lPos)) text = text[..lPos];
            }
            int dataLines = Count(source, pos, tagAt, '\n');
            if (text.Length > 0) tokens.Add(new JinjaToken(TokenType.Data, text, line));
            line += dataLines;

            if (isRaw)
            {
                (pos, lineStarting) = LexRaw(source, rawBodyStart, tokens, ref line);
                continue;
            }
            if (kind == '#')
            {
                int end = source.IndexOf("#}", after, StringComparison.Ordinal);
                if (end < 0) throw new ChatTemplateException("TemplateSyntaxError", "missing end of comment tag", line);
                line += Count(source, after, end, '\n');
                bool strip = end > after && source[end - 1] == '-';
                bool keep = end > after && source[end - 1] == '+';
                pos = end + 2;
                pos = ConsumeAfterEnd(source, pos, strip, trimBlock: !keep && !strip, ref line, out lineStarting);
                continue;
            }
            bool isBlock = kind == '%';
            tokens.Add(new JinjaToken(isBlock ? TokenType.BlockBegin : TokenType.VarBegin, "", line));
            pos = LexTag(source, after, isBlock, tokens, ref line, out lineStarting);
        }
        tokens.Add(new JinjaToken(TokenType.Eof, "", line));
        return tokens;
    }

    static readonly char[] PyWhitespace = [' ', '\t', '\n', '\r', '\v', '\f', '\u001c', '\u001d', '\u001e', '\u001f', '\u0085', '\u00a0', '\u1680', '\u2000', '\u2001', '\u2002', '\u2003', '\u2004', '\u2005', '\u2006', '\u2007', '\u2008', '\u2009', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000'];

    static bool IsPyWhitespace(char c) => Array.IndexOf(PyWhitespace, c) >= 0;

    static bool IsAllWhitespace(string s, int from)
    {
        for (int i = from; i < s.Length; i++) if (!IsPyWhitespace(s[i])) return false;
        return true;
    }

    static int Count(string s, int from, int to, char c)
    {
        int n = 0;
        for (int i = from; i < to; i++) if (s[i] == c) n++;
        return n;
    }

    static void AddData(List<JinjaToken> tokens, string text, ref int line)
    {
        if (text.Length > 0) tokens.Add(new JinjaToken(TokenType.Data, text, line));
        line += text.Count(c => c == '\n');
    }

    /// <summary>Only \r\n, \r and \n are line breaks (jinja2 3.x); one trailing newline is dropped.</summary>
    static string NormalizeNewlines(string source)
    {
        string s = source.Replace("\r\n", "\n").Replace('\r', '\n');
        return s.EndsWith('\n') ? s[..^1] : s;
    }

    static bool IsRawBegin(string s, int i, out int bodyStart)
    {
        bodyStart = 0;
        while (i < s.Length && IsPyWhitespace(s[i])) i++;
        if (string.CompareOrdinal(s, i, "raw", 0, 3) != 0) return false;
        i += 3;
        if (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] == '_')) return false;
        while (i < s.Length && IsPyWhitespace(s[i])) i++;
        if (string.CompareOrdinal(s, i, "-%}", 0, 3) == 0)
        {
            i += 3;
            while (i < s.Length && IsPyWhitespace(s[i])) i++;
            bodyStart = i;
            return true;
        }
        if (string.CompareOrdinal(s, i, "%}", 0, 2) == 0) { bodyStart = i + 2; return true; }
        return false;
    }

    static (int Pos, bool LineStarting) LexRaw(string s, int start, List<JinjaToken> tokens, ref int line)
    {
        // {% endraw %} with its own whitespace control.
        for (int i = s.IndexOf("{%", start, StringComparison.Ordinal); i >= 0; i = s.IndexOf("{%", i + 2, StringComparison.Ordinal))
        {
            int j = i + 2;
            char sign = j < s.Length && s[j] is '-' or '+' ? s[j] : '\0';
            if (sign != '\0') j++;
            while (j < s.Length && IsPyWhitespace(s[j])) j++;
            if (string.CompareOrdinal(s, j, "endraw", 0, 6) != 0) continue;
            j += 6;
            while (j < s.Length && IsPyWhitespace(s[j])) j++;
            bool strip = false, keep = false;
            if (j < s.Length && s[j] == '-') { strip = true; j++; }
            else if (j < s.Length && s[j] == '+') { keep = true; j++; }
            if (string.CompareOrdinal(s, j, "%}", 0, 2) != 0) continue;
            string text = s[start..i];
            if (sign == '-') text = text.TrimEnd(PyWhitespace);
            else if (sign != '+')
            {
                int lPos = text.LastIndexOf('\n') + 1;
                if (lPos > 0 && lPos < text.Length && IsAllWhitespace(text, lPos)) text = text[..lPos];
            }
            AddData(tokens, text, ref line);
            line += Count(s, start + text.Length, i, '\n');
            int pos = ConsumeAfterEnd(s, j + 2, strip, !keep && !strip, ref line, out bool ls);
            return (pos, ls);
        }
        throw new ChatTemplateException("TemplateSyntaxError", "missing end of raw directive", line);
    }

    static int ConsumeAfterEnd(string s, int pos, bool strip, bool trimBlock, ref int line, out bool lineStarting)
    {
        int start = pos;
        if (strip) while (pos < s.Length && IsPyWhitespace(s[pos])) pos++;
        else if (trimBlock && pos < s.Length && s[pos] == '\n') pos++;
        line += Count(s, start, pos, '\n');
        lineStarting = pos > start ? s[pos - 1] == '\n' : false;
        return pos;
    }

    static int LexTag(string s, int pos, bool isBlock, List<JinjaToken> tokens, ref int line, out bool lineStarting)
    {
        var balance = new Stack<char>();
        string end = isBlock ? "%}" : "}}";
        while (true)
        {
            if (pos >= s.Length) throw new ChatTemplateException("TemplateSyntaxError", $"unexpected end of template, expected '{end}'", line);
            if (balance.Count == 0)
            {
                bool strip = s[pos] == '-' && string.CompareOrdinal(s, pos + 1, end, 0, 2) == 0;
                bool keep = isBlock && s[pos] == '+' && string.CompareOrdinal(s, pos + 1, end, 0, 2) == 0;
                if (strip || keep || string.CompareOrdinal(s, pos, end, 0, 2) == 0)
                {
                    tokens.Add(new JinjaToken(isBlock ? TokenType.BlockEnd : TokenType.VarEnd, "", line));
                    int p = pos + (strip || keep ? 3 : 2);
                    return ConsumeAfterEnd(s, p, strip, trimBlock: isBlock && !keep && !strip, ref line, out lineStarting);
                }
            }
            char c = s[pos];
            if (IsPyWhitespace(c)) { if (c == '\n') line++; pos++; continue; }
            if (char.IsAsciiDigit(c)) { pos = LexNumber(s, pos, tokens, line); continue; }
            if (char.IsLetter(c) || c == '_')
            {
                int st = pos;
                while (pos < s.Length && (char.IsLetterOrDigit(s[pos]) || s[pos] == '_')) pos++;
                tokens.Add(new JinjaToken(TokenType.Name, s[st..pos], line));
                continue;
            }
            if (c is '\'' or '"')
            {
                int startLine = line;
                string value = LexString(s, ref pos, ref line);
                tokens.Add(new JinjaToken(TokenType.String, value, startLine));
                continue;
            }
            string? op = null;
            foreach (var o in Operators) if (string.CompareOrdinal(s, pos, o, 0, o.Length) == 0) { op = o; break; }
            if (op is null) throw new ChatTemplateException("TemplateSyntaxError", $"unexpected char '{c}'", line);
            if (op is "(" or "[" or "{") balance.Push(op switch { "(" => ')', "[" => ']', _ => '}' });
            else if (op is ")" or "]" or "}")
            {
                if (balance.Count == 0) throw new ChatTemplateException("TemplateSyntaxError", $"unexpected '{op}'", line);
                char expected = balance.Pop();
                if (expected != op[0]) throw new ChatTemplateException("TemplateSyntaxError", $"unexpected '{op}', expected '{expected}'", line);
            }
            tokens.Add(new JinjaToken(TokenType.Operator, op, line));
            pos += op.Length;
        }
    }

    static int LexNumber(string s, int pos, List<JinjaToken> tokens, int line)
    {
        int st = pos;
        while (pos < s.Length && (char.IsAsciiDigit(s[pos]) || s[pos] == '_')) pos++;
        bool isFloat = false;
        if (pos + 1 < s.Length && s[pos] == '.' && char.IsAsciiDigit(s[pos + 1]))
        {
            isFloat = true; pos++;
            while (pos < s.Length && (char.IsAsciiDigit(s[pos]) || s[pos] == '_')) pos++;
        }
        if (pos < s.Length && (s[pos] == 'e' || s[pos] == 'E'))
        {
            int q = pos + 1;
            if (q < s.Length && (s[q] == '+' || s[q] == '-')) q++;
            if (q < s.Length && char.IsAsciiDigit(s[q]))
            {
                isFloat = true; pos = q;
                while (pos < s.Length && char.IsAsciiDigit(s[pos])) pos++;
            }
        }
        tokens.Add(new JinjaToken(isFloat ? TokenType.Float : TokenType.Integer, s[st..pos].Replace("_", ""), line));
        return pos;
    }

    /// <summary>A quoted string with Python's escapes (jinja decodes literals with unicode-escape).</summary>
    static string LexString(string s, ref int pos, ref int line)
    {
        char quote = s[pos++];
        var sb = new StringBuilder();
        while (true)
        {
            if (pos >= s.Length) throw new ChatTemplateException("TemplateSyntaxError", "unterminated string", line);
            char c = s[pos++];
            if (c == quote) return sb.ToString();
            if (c == '\n') line++;
            if (c != '\\') { sb.Append(c); continue; }
            if (pos >= s.Length) throw new ChatTemplateException("TemplateSyntaxError", "unterminated string", line);
            char e = s[pos++];
            switch (e)
            {
                case '\n': line++; break; // line continuation
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case 'x': sb.Append((char)Hex(s, ref pos, 2, line)); break;
                case 'u': sb.Append((char)Hex(s, ref pos, 4, line)); break;
                case 'U': sb.Append(char.ConvertFromUtf32(Hex(s, ref pos, 8, line))); break;
                case >= '0' and <= '7':
                {
                    int v = e - '0', n = 1;
                    while (n < 3 && pos < s.Length && s[pos] is >= '0' and <= '7') { v = v * 8 + (s[pos++] - '0'); n++; }
                    sb.Append((char)v);
                    break;
                }
                default: sb.Append('\\').Append(e); break;
            }
        }
    }

    static int Hex(string s, ref int pos, int digits, int line)
    {
        if (pos + digits > s.Length || !int.TryParse(s.AsSpan(pos, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v))
            throw new ChatTemplateException("TemplateSyntaxError", "truncated \\x/\\u escape in string literal", line);
        pos += digits;
        return v;
    }
}
