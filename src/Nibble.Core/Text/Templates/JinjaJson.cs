using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nibble.Text.Templates;

/// <summary>Converts JSON (messages, tools, template kwargs) to template values the way json.loads builds Python objects.</summary>
public static class JinjaJson
{
    public static object? FromNode(JsonNode? node)
    {
        switch (node)
        {
            case null: return null;
            case JsonObject o:
            {
                var d = new JinjaDict();
                foreach (var (k, v) in o) d[k] = FromNode(v);
                return d;
            }
            case JsonArray a: return a.Select(FromNode).ToList();
            case JsonValue v:
            {
                // Parsed nodes wrap a JsonElement; nodes built from .NET values (JsonValue.Create("hi")) do not,
                // so those go through their JSON text to get exactly json.loads' types.
                if (v.TryGetValue<JsonElement>(out var el)) return FromElement(el);
                using var doc = JsonDocument.Parse(v.ToJsonString());
                return FromElement(doc.RootElement.Clone());
            }
            default: return null;
        }
    }

    public static object? FromElement(JsonElement el)
    {
        switch (el.ValueKind)
        {
            case JsonValueKind.Null or JsonValueKind.Undefined: return null;
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            case JsonValueKind.String: return el.GetString();
            case JsonValueKind.Number:
            {
                string raw = el.GetRawText();
                if (raw.IndexOfAny(['.', 'e', 'E']) < 0 && long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)) return l;
                return double.Parse(raw, CultureInfo.InvariantCulture);
            }
            case JsonValueKind.Array: return el.EnumerateArray().Select(FromElement).ToList();
            case JsonValueKind.Object:
            {
                var d = new JinjaDict();
                foreach (var p in el.EnumerateObject()) d[p.Name] = FromElement(p.Value);
                return d;
            }
            default: return null;
        }
    }
}
