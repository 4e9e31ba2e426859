using System.Globalization;

namespace Nibble.Text.Templates;

/// <summary>
/// Recursive-descent parser for the Jinja2 subset chat templates use, with jinja2/parser.py's precedence
/// (condexpr, or, and, not, compare, + -, ~, * / // %, **, unary, postfix, filters/tests). Unknown filters and tests
/// fail after parsing (UnknownNameCheck) except inside if-blocks and inline ifs, where jinja2 defers the error to run time.
/// </summary>
internal sealed class JinjaParser
{
    internal static readonly HashSet<string> JinjaFilters =
    [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "filesizeformat",
        "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join", "last", "length", "list",
        "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr", "replace", "reverse", "round", "safe",
        "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate",
        "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    ];

    internal static readonly HashSet<string> JinjaTests =
    [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter", "float",
        "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lower", "lessthan", "lt", "mapping", "ne", "none",
        "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper", "==", "!=", "<", "<=", ">", ">=",
    ];

    readonly List<JinjaToken> _t;
    int _p;

    JinjaParser(List<JinjaToken> tokens) => _t = tokens;

    public static List<Node> Parse(string source)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(source));
        var body = parser.ParseBody(out string? end);
        if (end is not null) throw parser.Syntax($"Encountered unknown tag '{end}'");
        UnknownNameCheck.Run(body);
        return body;
    }

    JinjaToken Cur => _t[_p];
    JinjaToken Peek(int k = 1) => _t[Math.Min(_p + k, _t.Count - 1)];
    JinjaToken Next() => _t[_p++];

    ChatTemplateException Syntax(string message) => new("TemplateSyntaxError", message, Cur.Line);

    void ExpectOp(string op)
    {
        if (!Cur.IsOp(op)) throw Syntax($"expected '{op}', got {Cur}");
        _p++;
    }

    string ExpectName()
    {
        if (Cur.Type != TokenType.Name) throw Syntax($"expected a name, got {Cur}");
        return Next().Value;
    }

    void ExpectBlockEnd()
    {
        if (Cur.Type != TokenType.BlockEnd) throw Syntax($"expected end of statement block, got {Cur}");
        _p++;
    }

    /// <summary>Parses nodes until a block tag this level does not own; returns that tag's name (positioned after it) or null at EOF.</summary>
    List<Node> ParseBody(out string? endTag, params string[] ends)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var tok = Cur;
            switch (tok.Type)
            {
                case TokenType.Eof:
                    endTag = null;
                    if (ends.Length > 0) throw Syntax($"Unexpected end of template. Jinja was looking for the following tags: {string.Join(" or ", ends.Select(e => $"'{e}'"))}");
                    return nodes;
                case TokenType.Data:
                    nodes.Add(new TextNode(tok.Value, tok.Line)); _p++;
                    break;
                case TokenType.VarBegin:
                {
                    _p++;
                    var e = ParseTuple();
                    if (Cur.Type != TokenType.VarEnd) throw Syntax($"expected end of print statement, got {Cur}");
                    _p++;
                    nodes.Add(new OutputNode(e, tok.Line));
                    break;
                }
                case TokenType.BlockBegin:
                {
                    _p++;
                    if (Cur.Type != TokenType.Name) throw Syntax("tag name expected");
                    string name = Cur.Value;
                    if (ends.Contains(name)) { _p++; endTag = name; return nodes; }
                    nodes.Add(ParseStatement());
                    break;
                }
                default:
                    throw Syntax($"unexpected {tok}");
            }
        }
    }

    Node ParseStatement()
    {
        var tok = Next();
        int line = tok.Line;
        switch (tok.Value)
        {
            case "if": return ParseIf(line);
            case "for": return ParseFor(line);
            case "set": return ParseSet(line);
            case "macro": return ParseMacro(line);
            case "filter":
            {
                var filters = ParseFilterChain();
                ExpectBlockEnd();
                var body = ParseBody(out _, "endfilter");
                ExpectBlockEnd();
                return new FilterBlockNode(filters, body, line);
            }
            case "break": ExpectBlockEnd(); return new BreakNode(line);
            case "continue": ExpectBlockEnd(); return new ContinueNode(line);
            case "generation":
            {
                ExpectBlockEnd();
                var body = ParseBody(out _, "endgeneration");
                ExpectBlockEnd();
                return new GenerationNode(body, line);
            }
            case "call" or "with" or "autoescape" or "include" or "import" or "from" or "extends" or "block":
                throw new ChatTemplateException("Unsupported", $"the '{{% {tok.Value} %}}' tag", line);
            default:
                _p--;
                throw Syntax($"Encountered unknown tag '{tok.Value}'");
        }
    }

    Node ParseIf(int line)
    {
        var branches = new List<(Expr, List<Node>)>();
        List<Node>? elseBody = null;
        var test = ParseTuple(withCondExpr: false);
        ExpectBlockEnd();
        while (true)
        {
            var body = ParseBody(out string? end, "elif", "else", "endif");
            branches.Add((test, body));
            if (end == "elif") { test = ParseTuple(withCondExpr: false); ExpectBlockEnd(); continue; }
            if (end == "else")
            {
                ExpectBlockEnd();
                elseBody = ParseBody(out _, "endif");
            }
            ExpectBlockEnd();
            break;
        }
        return new IfNode(branches, elseBody, line);
    }

    Node ParseFor(int line)
    {
        var target = ParseAssignTarget(allowNamespace: false, "in");
        if (!Cur.IsName("in")) throw Syntax($"expected 'in', got {Cur}");
        _p++;
        var iter = ParseTuple(withCondExpr: false, extraEnd: "recursive");
        Expr? filter = null;
        if (Cur.IsName("if")) { _p++; filter = ParseExpression(); }
        if (Cur.IsName("recursive")) throw new ChatTemplateException("Unsupported", "recursive for loops", line);
        ExpectBlockEnd();
        var body = ParseBody(out string? end, "endfor", "else");
        List<Node>? elseBody = null;
        if (end == "else") { ExpectBlockEnd(); elseBody = ParseBody(out _, "endfor"); }
        ExpectBlockEnd();
        return new ForNode(target, iter, filter, body, elseBody, line);
    }

    Node ParseSet(int line)
    {
        var target = ParseAssignTarget(allowNamespace: true);
        if (Cur.IsOp("="))
        {
            _p++;
            var value = ParseTuple();
            ExpectBlockEnd();
            return new SetNode(target, value, line);
        }
        var filters = Cur.IsOp("|") ? ParseFilterChain() : [];
        ExpectBlockEnd();
        var body = ParseBody(out _, "endset");
        ExpectBlockEnd();
        return new SetBlockNode(target, body, filters, line);
    }

    List<(string, List<Expr>, List<(string, Expr)>)> ParseFilterChain()
    {
        var list = new List<(string, List<Expr>, List<(string, Expr)>)>();
        bool first = true;
        while (first || Cur.IsOp("|"))
        {
            if (Cur.IsOp("|")) _p++;
            first = false;
            var f = ParseFilterName(null);
            list.Add((f.Name, f.Args, f.Kwargs));
        }
        return list;
    }

    Node ParseMacro(int line)
    {
        string name = ExpectName();
        var parameters = new List<(string, Expr?)>();
        ExpectOp("(");
        while (!Cur.IsOp(")"))
        {
            if (parameters.Count > 0) ExpectOp(",");
            if (Cur.IsOp(")")) break;
            string p = ExpectName();
            Expr? def = null;
            if (Cur.IsOp("=")) { _p++; def = ParseExpression(); }
            parameters.Add((p, def));
        }
        _p++;
        ExpectBlockEnd();
        var body = ParseBody(out _, "endmacro");
        ExpectBlockEnd();
        return new MacroNode(name, parameters, body, line);
    }

    Expr ParseAssignTarget(bool allowNamespace, params string[] extraEnd)
    {
        int line = Cur.Line;
        if (allowNamespace && Cur.Type == TokenType.Name && Peek().IsOp("."))
        {
            string ns = Next().Value;
            _p++;
            string attr = ExpectName();
            return new GetAttrExpr(new NameExpr(ns, line), attr, line);
        }
        var names = new List<Expr>();
        bool paren = Cur.IsOp("(");
        if (paren) _p++;
        while (true)
        {
            names.Add(new NameExpr(ExpectName(), line));
            if (!Cur.IsOp(",")) break;
            _p++;
            if (Cur.Type != TokenType.Name || extraEnd.Contains(Cur.Value)) break;
        }
        if (paren) ExpectOp(")");
        return names.Count == 1 && !paren ? names[0] : new TupleExpr(names, line);
    }

    bool AtTupleEnd(string? extraEnd) =>
        Cur.Type is TokenType.VarEnd or TokenType.BlockEnd or TokenType.Eof || Cur.IsOp(")") ||
        (extraEnd is not null && Cur.IsName(extraEnd)) || Cur.IsName("if") && extraEnd == "recursive";

    Expr ParseTuple(bool withCondExpr = true, string? extraEnd = null, bool explicitParens = false)
    {
        int line = Cur.Line;
        var items = new List<Expr>();
        bool isTuple = false;
        while (true)
        {
            if (items.Count > 0) ExpectOp(",");
            if (AtTupleEnd(extraEnd)) break;
            items.Add(withCondExpr ? ParseExpression() : ParseOr());
            if (Cur.IsOp(",")) isTuple = true; else break;
        }
        if (!isTuple)
        {
            if (items.Count == 1) return items[0];
            if (!explicitParens) throw Syntax($"Expected an expression, got {Cur}");
        }
        return new TupleExpr(items, line);
    }

    Expr ParseExpression()
    {
        var e = ParseOr();
        while (Cur.IsName("if"))
        {
            int line = Cur.Line;
            _p++;
            var test = ParseOr();
            Expr? elseExpr = null;
            if (Cur.IsName("else")) { _p++; elseExpr = ParseExpression(); }
            e = new CondExpr(test, e, elseExpr, line);
        }
        return e;
    }

    Expr ParseOr()
    {
        var left = ParseAnd();
        while (Cur.IsName("or")) { int l = Next().Line; left = new BinaryExpr("or", left, ParseAnd(), l); }
        return left;
    }

    Expr ParseAnd()
    {
        var left = ParseNot();
        while (Cur.IsName("and")) { int l = Next().Line; left = new BinaryExpr("and", left, ParseNot(), l); }
        return left;
    }

    Expr ParseNot()
    {
        if (Cur.IsName("not")) { int l = Next().Line; return new UnaryExpr("not", ParseNot(), l); }
        return ParseCompare();
    }

    Expr ParseCompare()
    {
        int line = Cur.Line;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Cur.Type == TokenType.Operator && Cur.Value is "==" or "!=" or "<" or "<=" or ">" or ">=")
            {
                string op = Next().Value;
                rest.Add((op, ParseMath1()));
            }
            else if (Cur.IsName("in")) { _p++; rest.Add(("in", ParseMath1())); }
            else if (Cur.IsName("not") && Peek().IsName("in")) { _p += 2; rest.Add(("notin", ParseMath1())); }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(first, rest, line);
    }

    Expr ParseMath1()
    {
        var left = ParseConcat();
        while (Cur.IsOp("+") || Cur.IsOp("-")) { var t = Next(); left = new BinaryExpr(t.Value, left, ParseConcat(), t.Line); }
        return left;
    }

    Expr ParseConcat()
    {
        var left = ParseMath2();
        while (Cur.IsOp("~")) { var t = Next(); left = new BinaryExpr("~", left, ParseMath2(), t.Line); }
        return left;
    }

    Expr ParseMath2()
    {
        var left = ParsePow();
        while (Cur.Type == TokenType.Operator && Cur.Value is "*" or "/" or "//" or "%")
        {
            var t = Next();
            left = new BinaryExpr(t.Value, left, ParsePow(), t.Line);
        }
        return left;
    }

    Expr ParsePow()
    {
        var left = ParseUnary();
        while (Cur.IsOp("**")) { var t = Next(); left = new BinaryExpr("**", left, ParseUnary(), t.Line); }
        return left;
    }

    Expr ParseUnary(bool withFilter = true)
    {
        Expr node;
        if (Cur.IsOp("-") || Cur.IsOp("+")) { var t = Next(); node = new UnaryExpr(t.Value, ParseUnary(false), t.Line); }
        else node = ParsePrimary();
        node = ParsePostfix(node);
        if (withFilter) node = ParseFilterExpr(node);
        return node;
    }

    Expr ParsePrimary()
    {
        var t = Cur;
        switch (t.Type)
        {
            case TokenType.Name:
                _p++;
                return t.Value switch
                {
                    "true" or "True" => new ConstExpr(true, t.Line),
                    "false" or "False" => new ConstExpr(false, t.Line),
                    "none" or "None" => new ConstExpr(null, t.Line),
                    _ => new NameExpr(t.Value, t.Line),
                };
            case TokenType.String:
            {
                string s = "";
                while (Cur.Type == TokenType.String) s += Next().Value;
                return new ConstExpr(s, t.Line);
            }
            case TokenType.Integer:
                _p++;
                return new ConstExpr(long.Parse(t.Value, CultureInfo.InvariantCulture), t.Line);
            case TokenType.Float:
                _p++;
                return new ConstExpr(double.Parse(t.Value, CultureInfo.InvariantCulture), t.Line);
            case TokenType.Operator when t.Value == "(":
            {
                _p++;
                var e = ParseTuple(explicitParens: true);
                ExpectOp(")");
                return e;
            }
            case TokenType.Operator when t.Value == "[":
            {
                _p++;
                var items = new List<Expr>();
                while (!Cur.IsOp("]"))
                {
                    if (items.Count > 0) ExpectOp(",");
                    if (Cur.IsOp("]")) break;
                    items.Add(ParseExpression());
                }
                _p++;
                return new ListExpr(items, t.Line);
            }
            case TokenType.Operator when t.Value == "{":
            {
                _p++;
                var items = new List<(Expr, Expr)>();
                while (!Cur.IsOp("}"))
                {
                    if (items.Count > 0) ExpectOp(",");
                    if (Cur.IsOp("}")) break;
                    var k = ParseExpression();
                    ExpectOp(":");
                    items.Add((k, ParseExpression()));
                }
                _p++;
                return new DictExpr(items, t.Line);
            }
            default:
                throw Syntax($"unexpected {t}");
        }
    }

    Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (Cur.IsOp(".") || Cur.IsOp("[")) node = ParseSubscript(node);
            else if (Cur.IsOp("(")) node = ParseCall(node);
            else return node;
        }
    }

    Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            if (Cur.IsOp("|")) { _p++; var f = ParseFilterName(node); node = f; }
            else if (Cur.IsName("is")) node = ParseTest(node);
            else if (Cur.IsOp("(")) node = ParseCall(node);
            else return node;
        }
    }

    Expr ParseSubscript(Expr node)
    {
        var t = Next();
        if (t.Value == ".")
        {
            var a = Next();
            if (a.Type == TokenType.Name) return new GetAttrExpr(node, a.Value, t.Line);
            if (a.Type == TokenType.Integer) return new GetItemExpr(node, new ConstExpr(long.Parse(a.Value, CultureInfo.InvariantCulture), a.Line), t.Line);
            throw Syntax("expected name or number");
        }
        // '[' : index or slice
        Expr? start = null, stop = null, step = null;
        bool isSlice = false;
        if (!Cur.IsOp(":")) start = ParseExpression();
        if (Cur.IsOp(":"))
        {
            isSlice = true; _p++;
            if (!Cur.IsOp("]") && !Cur.IsOp(":")) stop = ParseExpression();
            if (Cur.IsOp(":")) { _p++; if (!Cur.IsOp("]")) step = ParseExpression(); }
        }
        else if (Cur.IsOp(","))
        {
            var items = new List<Expr> { start! };
            while (Cur.IsOp(",")) { _p++; if (Cur.IsOp("]")) break; items.Add(ParseExpression()); }
            start = new TupleExpr(items, t.Line);
        }
        ExpectOp("]");
        return isSlice ? new SliceExpr(node, start, stop, step, t.Line) : new GetItemExpr(node, start!, t.Line);
    }

    (List<Expr> Args, List<(string, Expr)> Kwargs, Expr? DynArgs, Expr? DynKwargs) ParseCallArgs()
    {
        ExpectOp("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        Expr? dynArgs = null, dynKwargs = null;
        bool first = true;
        while (!Cur.IsOp(")"))
        {
            if (!first) ExpectOp(",");
            first = false;
            if (Cur.IsOp(")")) break;
            if (Cur.IsOp("**")) { _p++; dynKwargs = ParseExpression(); }
            else if (Cur.IsOp("*")) { _p++; dynArgs = ParseExpression(); }
            else if (Cur.Type == TokenType.Name && Peek().IsOp("="))
            {
                string k = Next().Value; _p++;
                kwargs.Add((k, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0) throw Syntax("positional argument after keyword argument");
                args.Add(ParseExpression());
            }
        }
        _p++;
        return (args, kwargs, dynArgs, dynKwargs);
    }

    Expr ParseCall(Expr node)
    {
        int line = Cur.Line;
        var (args, kwargs, da, dk) = ParseCallArgs();
        return new CallExpr(node, args, kwargs, da, dk, line);
    }

    FilterExpr ParseFilterName(Expr? node)
    {
        int line = Cur.Line;
        string name = ExpectName();
        while (Cur.IsOp(".")) { _p++; name += "." + ExpectName(); }
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        if (Cur.IsOp("("))
        {
            var (a, k, da, dk) = ParseCallArgs();
            if (da is not null || dk is not null) throw new ChatTemplateException("Unsupported", "*args/**kwargs in filter calls", line);
            args = a; kwargs = k;
        }
        return new FilterExpr(node, name, args, kwargs, line);
    }

    Expr ParseTest(Expr node)
    {
        int line = Next().Line; // 'is'
        bool negated = false;
        if (Cur.IsName("not")) { negated = true; _p++; }
        string name = ExpectName();
        while (Cur.IsOp(".")) { _p++; name += "." + ExpectName(); }
        var args = new List<Expr>();
        if (Cur.IsOp("("))
        {
            var (a, k, _, _) = ParseCallArgs();
            args = a;
            args.AddRange(k.Select(x => x.Item2));
        }
        else if (Cur.Type is TokenType.Name or TokenType.String or TokenType.Integer or TokenType.Float ||
                 Cur.IsOp("(") || Cur.IsOp("[") || Cur.IsOp("{"))
        {
            if (!(Cur.IsName("else") || Cur.IsName("or") || Cur.IsName("and")))
            {
                if (Cur.IsName("is")) throw Syntax("You cannot chain multiple tests with is");
                args.Add(ParsePostfix(ParsePrimary()));
            }
        }
        return new TestExpr(node, name, args, negated, line);
    }
}
