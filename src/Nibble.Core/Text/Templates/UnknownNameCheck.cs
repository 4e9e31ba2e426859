namespace Nibble.Text.Templates;

/// <summary>
/// jinja2 rejects a filter or test it does not know when compiling, unless the use sits in an if-statement
/// or an inline if ("soft" frames, jinja2/compiler.py), where the error waits until the call runs. We do the same,
/// so a template that transformers cannot compile fails here too, and one it can still renders.
/// </summary>
internal static class UnknownNameCheck
{
    public static void Run(List<Node> body) => Nodes(body, soft: false);

    static void Nodes(IEnumerable<Node> nodes, bool soft)
    {
        foreach (var n in nodes) Node(n, soft);
    }

    static void Node(Node n, bool soft)
    {
        switch (n)
        {
            case OutputNode o: E(o.Value, soft); break;
            case IfNode i:
                foreach (var (test, body) in i.Branches) { E(test, true); Nodes(body, true); }
                if (i.Else is not null) Nodes(i.Else, true);
                break;
            case ForNode f:
                E(f.Iter, soft);
                if (f.Filter is not null) E(f.Filter, false);
                Nodes(f.Body, false);
                if (f.Else is not null) Nodes(f.Else, false);
                break;
            case SetNode s: E(s.Value, soft); break;
            case SetBlockNode sb:
                foreach (var f in sb.Filters) Filter(f.Name, f.Args, f.Kwargs, soft, sb.Line);
                Nodes(sb.Body, soft);
                break;
            case FilterBlockNode fb:
                foreach (var f in fb.Filters) Filter(f.Name, f.Args, f.Kwargs, soft, fb.Line);
                Nodes(fb.Body, soft);
                break;
            case MacroNode m:
                foreach (var (_, d) in m.Params) if (d is not null) E(d, false);
                Nodes(m.Body, false);
                break;
            case GenerationNode g: Nodes(g.Body, soft); break;
        }
    }

    static void Filter(string name, List<Expr> args, List<(string, Expr)> kwargs, bool soft, int line)
    {
        if (!soft && !JinjaParser.JinjaFilters.Contains(name))
            throw new ChatTemplateException("TemplateAssertionError", $"No filter named '{name}'", line);
        foreach (var a in args) E(a, soft);
        foreach (var (_, v) in kwargs) E(v, soft);
    }

    static void E(Expr? e, bool soft)
    {
        switch (e)
        {
            case null or ConstExpr or NameExpr: break;
            case ListExpr l: foreach (var x in l.Items) E(x, soft); break;
            case TupleExpr t: foreach (var x in t.Items) E(x, soft); break;
            case DictExpr d: foreach (var (k, v) in d.Items) { E(k, soft); E(v, soft); } break;
            case GetAttrExpr g: E(g.Obj, soft); break;
            case GetItemExpr g: E(g.Obj, soft); E(g.Key, soft); break;
            case SliceExpr s: E(s.Obj, soft); E(s.Start, soft); E(s.Stop, soft); E(s.Step, soft); break;
            case CallExpr c:
                E(c.Callee, soft);
                foreach (var a in c.Args) E(a, soft);
                foreach (var (_, v) in c.Kwargs) E(v, soft);
                E(c.DynArgs, soft); E(c.DynKwargs, soft);
                break;
            case FilterExpr f: E(f.Value, soft); Filter(f.Name, f.Args, f.Kwargs, soft, f.Line); break;
            case TestExpr t:
                if (!soft && !JinjaParser.JinjaTests.Contains(t.Name))
                    throw new ChatTemplateException("TemplateAssertionError", $"No test named '{t.Name}'", t.Line);
                E(t.Value, soft);
                foreach (var a in t.Args) E(a, soft);
                break;
            case UnaryExpr u: E(u.Operand, soft); break;
            case BinaryExpr b: E(b.Left, soft); E(b.Right, soft); break;
            case CompareExpr c: E(c.First, soft); foreach (var (_, r) in c.Rest) E(r, soft); break;
            case CondExpr c: E(c.Test, true); E(c.Then, true); E(c.Else, true); break;
        }
    }
}
