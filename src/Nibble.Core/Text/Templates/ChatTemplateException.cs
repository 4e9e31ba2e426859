namespace Nibble.Text.Templates;

/// <summary>
/// A chat template that cannot be parsed or rendered. <see cref="Kind"/> uses the Python/Jinja exception names
/// (<c>TemplateSyntaxError</c>, <c>TemplateError</c> from <c>raise_exception</c>, <c>TypeError</c>, <c>UndefinedError</c>,
/// <c>SecurityError</c>, <c>TemplateRuntimeError</c>) so that errors compare with what transformers raises;
/// <c>Unsupported</c> names a Jinja feature Nibble's interpreter does not implement.
/// </summary>
public sealed class ChatTemplateException : NibbleException
{
    public string Kind { get; }
    public string Detail { get; }
    public int? Line { get; }

    public ChatTemplateException(string kind, string detail, int? line = null, string? templateName = null)
        : base(Format(kind, detail, line, templateName))
    {
        Kind = kind;
        Detail = detail;
        Line = line;
    }

    static string Format(string kind, string detail, int? line, string? name)
    {
        string where = (name, line) switch
        {
            (not null, not null) => $" ({name}, line {line})",
            (null, not null) => $" (template line {line})",
            (not null, null) => $" ({name})",
            _ => "",
        };
        string fix = kind switch
        {
            "Unsupported" => "; this Jinja feature is not implemented by Nibble's template interpreter, use a template without it",
            "TemplateSyntaxError" => "; fix the template's syntax",
            "TemplateError" => "; the template itself rejected this conversation",
            _ => "",
        };
        return $"chat template {kind}: {detail}{where}{fix}.";
    }

    internal ChatTemplateException WithLine(int line, string? name) =>
        Line is null ? new ChatTemplateException(Kind, Detail, line, name) : this;
}
