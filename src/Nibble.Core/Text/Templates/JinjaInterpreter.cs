using System.Text;

namespace Nibble.Text.Templates;

/// <summary>
/// Walks a parsed template the way jinja2's ImmutableSandboxedEnvironment (transformers' choice) would run it:
/// Python value semantics, a fresh scope per loop iteration (assignments do not leak out of loops; namespace()
/// is the way out), macros that see their defining scope at call time, and the sandbox's refusal of mutating methods.
/// </summary>
internal sealed class JinjaInterpreter
{
    sealed class Scope(Scope? parent)
    {
        public readonly Dictionary<string, object?> Vars = new();
        public Scope? Parent { get; } = parent;

        public bool TryGet(string name, out object? value)
        {
            for (var s = this; s is not null; s = s.Parent)
                if (s.Vars.TryGetValue(name, out value)) return true;
            value = null;
            return false;
        }
    }

    sealed class LoopControl(bool isBreak) : Exception { public bool IsBreak { get; } = isBreak; }

    int _loopDepth;
    readonly string? _templateName;

    JinjaInterpreter(string? templateName) => _templateName = templateName;

    public static string Render(List<Node> body, IReadOnlyDictionary<string, object?> variables, string? templateName, Func<DateTime> clock)
    {
        var interpreter = new JinjaInterpreter(templateName);
        var globals = new Scope(null);
        foreach (var (k, v) in JinjaGlobals.Create(clock)) globals.Vars[k] = v;
        var root = new Scope(globals);
        foreach (var (k, v) in variables) root.Vars[k] = v;
        var sb = new StringBuilder();
        interpreter.Exec(body, root, sb);
        return sb.ToString();
    }

    void Exec(List<Node> nodes, Scope scope, StringBuilder output)
    {
        foreach (var node in nodes)
        {
            try { ExecNode(node, scope, output); }
            catch (ChatTemplateException e) when (e.Line is null) { throw e.WithLine(node.Line, _templateName); }
        }
    }

    void ExecNode(Node node, Scope scope, StringBuilder output)
    {
        switch (node)
        {
            case TextNode t: output.Append(t.Text); break;
            case OutputNode o: output.Append(Py.Str(Eval(o.Value, scope))); break;
            case IfNode i:
                foreach (var (test, body) in i.Branches)
                    if (Py.Truthy(Eval(test, scope))) { Exec(body, scope, output); return; }
                if (i.Else is not null) Exec(i.Else, scope, output);
                break;
            case ForNode f: ExecFor(f, scope, output); break;
            case SetNode s: Assign(s.Target, Eval(s.Value, scope), scope); break;
            case SetBlockNode sb:
            {
                var inner = new StringBuilder();
                Exec(sb.Body, scope, inner);
                object? value = inner.ToString();
                foreach (var (name, args, kwargs) in sb.Filters)
                    value = JinjaFilters.Apply(this, name, value, args.Select(a => Eval(a, scope)).ToList(), EvalKwargs(kwargs, scope));
                Assign(sb.Target, value, scope);
                break;
            }
            case FilterBlockNode fb:
            {
                var inner = new StringBuilder();
                Exec(fb.Body, scope, inner);
                object? value = inner.ToString();
                foreach (var (name, args, kwargs) in fb.Filters)
                    value = JinjaFilters.Apply(this, name, value, args.Select(a => Eval(a, scope)).ToList(), EvalKwargs(kwargs, scope));
                output.Append(Py.Str(value));
                break;
            }
            case MacroNode m: scope.Vars[m.Name] = MakeMacro(m, scope); break;
            case BreakNode: if (_loopDepth == 0) throw new ChatTemplateException("TemplateSyntaxError", "break outside of a loop"); throw new LoopControl(true);
            case ContinueNode: if (_loopDepth == 0) throw new ChatTemplateException("TemplateSyntaxError", "continue outside of a loop"); throw new LoopControl(false);
            case GenerationNode g: Exec(g.Body, scope, output); break;
            default: throw new ChatTemplateException("Unsupported", $"statement {node.GetType().Name}");
        }
    }

    void ExecFor(ForNode f, Scope scope, StringBuilder output)
    {
        var source = Eval(f.Iter, scope);
        var items = Py.ToList(source);
        if (f.Filter is not null)
        {
            var kept = new List<object?>();
            foreach (var item in items)
            {
                var probe = new Scope(scope);
                Assign(f.Target, item, probe);
                if (Py.Truthy(Eval(f.Filter, probe))) kept.Add(item);
            }
            items = kept;
        }
        if (items.Count == 0)
        {
            if (f.Else is not null) Exec(f.Else, scope, output);
            return;
        }
        var loop = new JinjaLoop(items, _loopDepth);
        _loopDepth++;
        try
        {
            for (int i = 0; i < items.Count; i++)
            {
                loop.Index0 = i;
                var iteration = new Scope(scope);
                iteration.Vars["loop"] = loop;
                Assign(f.Target, items[i], iteration);
                try { Exec(f.Body, iteration, output); }
                catch (LoopControl c) { if (c.IsBreak) break; }
            }
        }
        finally { _loopDepth--; }
    }

    void Assign(Expr target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameExpr n: scope.Vars[n.Name] = value; break;
            case TupleExpr t:
            {
                var values = value switch
                {
                    JinjaTuple tuple => tuple.Items.ToList(),
                    List<object?> list => list,
                    string or JinjaDict => Py.ToList(value),
                    _ => throw new ChatTemplateException("TypeError", $"cannot unpack non-iterable {Py.TypeName(value)} object"),
                };
                if (values.Count != t.Items.Count)
                    throw new ChatTemplateException("ValueError", values.Count > t.Items.Count
                        ? $"too many values to unpack (expected {t.Items.Count})"
                        : $"not enough values to unpack (expected {t.Items.Count}, got {values.Count})");
                for (int i = 0; i < values.Count; i++) Assign(t.Items[i], values[i], scope);
                break;
            }
            case GetAttrExpr { Obj: NameExpr ns } g:
            {
                scope.TryGet(ns.Name, out var obj);
                if (obj is not JinjaNamespace space)
                    throw new ChatTemplateException("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
                space.Attributes[g.Name] = value;
                break;
            }
            default: throw new ChatTemplateException("TemplateSyntaxError", "cannot assign to this expression");
        }
    }

    JinjaCallable MakeMacro(MacroNode m, Scope defining) => new(m.Name, (args, kwargs) =>
    {
        var scope = new Scope(defining);
        var extra = new List<object?>();
        for (int i = 0; i < args.Count; i++)
        {
            if (i < m.Params.Count) scope.Vars[m.Params[i].Name] = args[i];
            else extra.Add(args[i]);
        }
        var extraKw = new JinjaDict();
        foreach (var (k, v) in kwargs)
        {
            if (m.Params.Any(p => p.Name == k)) scope.Vars[k] = v;
            else extraKw[k] = v;
        }
        foreach (var (name, def) in m.Params)
            if (!scope.Vars.ContainsKey(name))
                scope.Vars[name] = def is null ? new JinjaUndefined($"parameter '{name}' was not provided") : Eval(def, scope);
        scope.Vars["varargs"] = extra;
        scope.Vars["kwargs"] = extraKw;
        var sb = new StringBuilder();
        int depth = _loopDepth;
        _loopDepth = 0;
        try { Exec(m.Body, scope, sb); }
        finally { _loopDepth = depth; }
        return sb.ToString();
    });

    Dictionary<string, object?> EvalKwargs(List<(string, Expr)> kwargs, Scope scope)
    {
        var d = new Dictionary<string, object?>();
        foreach (var (k, v) in kwargs) d[k] = Eval(v, scope);
        return d;
    }

    object? Eval(Expr e, Scope scope)
    {
        switch (e)
        {
            case ConstExpr c: return c.Value;
            case NameExpr n: return scope.TryGet(n.Name, out var v) ? v : new JinjaUndefined($"'{n.Name}' is undefined");
            case ListExpr l: return l.Items.Select(x => Eval(x, scope)).ToList();
            case TupleExpr t: return new JinjaTuple(t.Items.Select(x => Eval(x, scope)).ToArray());
            case DictExpr d:
            {
                var dict = new JinjaDict();
                foreach (var (k, val) in d.Items)
                {
                    var key = Eval(k, scope) ?? throw new ChatTemplateException("Unsupported", "None as a dict key");
                    dict[key] = Eval(val, scope);
                }
                return dict;
            }
            case GetAttrExpr g: return PyMethods.GetAttr(Eval(g.Obj, scope), g.Name);
            case GetItemExpr g: return PyMethods.GetItem(Eval(g.Obj, scope), Eval(g.Key, scope));
            case SliceExpr s:
                return PyMethods.Slice(Eval(s.Obj, scope),
                    s.Start is null ? null : Eval(s.Start, scope), s.Stop is null ? null : Eval(s.Stop, scope), s.Step is null ? null : Eval(s.Step, scope));
            case CallExpr c: return EvalCall(c, scope);
            case FilterExpr f:
                return JinjaFilters.Apply(this, f.Name, f.Value is null ? null : Eval(f.Value, scope),
                    f.Args.Select(a => Eval(a, scope)).ToList(), EvalKwargs(f.Kwargs, scope));
            case TestExpr t:
            {
                bool r = JinjaTests.Apply(this, t.Name, Eval(t.Value, scope), t.Args.Select(a => Eval(a, scope)).ToList());
                return t.Negated ? !r : r;
            }
            case UnaryExpr u:
            {
                var x = Eval(u.Operand, scope);
                return u.Op switch
                {
                    "not" => !Py.Truthy(x),
                    "-" => x switch
                    {
                        long l => -l, double d => -d, bool b => (object)(b ? -1L : 0L),
                        JinjaUndefined und => throw und.Fail(),
                        _ => throw new ChatTemplateException("TypeError", $"bad operand type for unary -: '{Py.TypeName(x)}'"),
                    },
                    _ => x is long or double ? x : x is bool bb ? (bb ? 1L : 0L) : throw new ChatTemplateException("TypeError", $"bad operand type for unary +: '{Py.TypeName(x)}'"),
                };
            }
            case BinaryExpr b:
            {
                if (b.Op == "and") { var l = Eval(b.Left, scope); return Py.Truthy(l) ? Eval(b.Right, scope) : l; }
                if (b.Op == "or") { var l = Eval(b.Left, scope); return Py.Truthy(l) ? l : Eval(b.Right, scope); }
                return PyOps.Binary(b.Op, Eval(b.Left, scope), Eval(b.Right, scope));
            }
            case CompareExpr c:
            {
                var left = Eval(c.First, scope);
                foreach (var (op, rightExpr) in c.Rest)
                {
                    var right = Eval(rightExpr, scope);
                    if (!PyOps.Compare(op, left, right)) return false;
                    left = right;
                }
                return true;
            }
            case CondExpr c:
                if (Py.Truthy(Eval(c.Test, scope))) return Eval(c.Then, scope);
                return c.Else is null ? new JinjaUndefined("the inline if-expression evaluated to false and no else section was defined") : Eval(c.Else, scope);
            default:
                throw new ChatTemplateException("Unsupported", $"expression {e.GetType().Name}");
        }
    }

    object? EvalCall(CallExpr c, Scope scope)
    {
        var callee = Eval(c.Callee, scope);
        var args = c.Args.Select(a => Eval(a, scope)).ToList();
        var kwargs = EvalKwargs(c.Kwargs, scope);
        if (c.DynArgs is not null) args.AddRange(Py.ToList(Eval(c.DynArgs, scope)));
        if (c.DynKwargs is not null)
        {
            if (Eval(c.DynKwargs, scope) is not JinjaDict d) throw new ChatTemplateException("TypeError", "argument after ** must be a mapping");
            foreach (var (k, v) in d) kwargs[Py.Str(k)] = v;
        }
        return callee switch
        {
            JinjaCallable f => f.Invoke(args, kwargs),
            JinjaUndefined u => throw u.Fail(),
            _ => throw new ChatTemplateException("TypeError", $"'{Py.TypeName(callee)}' object is not callable"),
        };
    }

    /// <summary>Calls a filter by name on behalf of <c>map('name')</c> / <c>select('test')</c>.</summary>
    internal object? CallFilter(string name, object? value, List<object?> args, Dictionary<string, object?> kwargs) =>
        JinjaFilters.Apply(this, name, value, args, kwargs);
}
