using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nibble.Text;
using Nibble.Text.Templates;
using Nibble.Text.Tokenization;
using Spectre.Console;

namespace Nibble.Cli.Commands;

/// <summary>
/// `nibble tokenize &lt;model-dir&gt; (--text s | --file p | --chat conversation.json) [--json]`: token ids and decoded pieces;
/// with --chat the conversation is rendered with the model's chat template and each token shows its role/kind label and mask bit.
/// </summary>
public static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model-dir") { Description = "Hugging Face model directory (default: the bundled nano model).", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => BundledModel.Path };
        var text = new Option<string?>("--text") { Description = "Text to encode." };
        var file = new Option<string?>("--file") { Description = "File whose UTF-8 text to encode." };
        var chat = new Option<string?>("--chat") { Description = "Conversation JSON ({\"messages\": [...], \"tools\": [...] or null}) to render with the model's chat template and label." };
        var addGen = new Option<bool>("--add-generation-prompt") { Description = "With --chat: end with the assistant generation prompt." };
        var special = new Option<bool>("--add-special-tokens") { Description = "Add the post-processor's special tokens (e.g. a BOS token)." };
        var json = new Option<bool>("--json") { Description = "Print machine-readable JSON on stdout." };
        var command = new Command("tokenize", "Encode text (or a chat conversation) with a model's tokenizer.json and show ids, pieces and labels.")
            { model, text, file, chat, addGen, special, json };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            string dir = parse.GetValue(model)!;
            string? t = parse.GetValue(text), f = parse.GetValue(file), c = parse.GetValue(chat);
            if ((t is null ? 0 : 1) + (f is null ? 0 : 1) + (c is null ? 0 : 1) != 1)
                throw new NibbleException("Give exactly one of --text, --file or --chat.");
            var tokenizer = HfTokenizer.Load(dir);
            int[] ids;
            TokenLabel[]? labels = null;
            bool[]? mask = null;
            if (c is not null)
            {
                var (messages, tools) = ChatTemplateCommand.ReadConversation(c);
                var encoded = CalibrationMask.Encode(tokenizer, ChatTemplate.Load(dir), messages, tools, parse.GetValue(addGen));
                (ids, labels, mask) = (encoded.Ids, encoded.Labels, encoded.Mask);
                foreach (var note in encoded.Rendered.Notes) Console.Error.WriteLine($"note: {note}");
            }
            else
            {
                string input = t ?? ReadFile(f!);
                ids = tokenizer.Encode(input, parse.GetValue(special));
            }
            var pieces = ids.Select(id => tokenizer.Decode([id])).ToArray();
            if (parse.GetValue(json))
            {
                var o = new JsonObject
                {
                    ["ids"] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray()),
                    ["pieces"] = new JsonArray(pieces.Select(p => (JsonNode)p).ToArray()),
                };
                if (labels is not null)
                {
                    o["roles"] = new JsonArray(labels.Select(l => (JsonNode)l.Role.ToString().ToLowerInvariant()).ToArray());
                    o["kinds"] = new JsonArray(labels.Select(l => (JsonNode)TokenLabel.KindName(l.Kind)).ToArray());
                    o["mask"] = new JsonArray(mask!.Select(m => (JsonNode)(m ? 1 : 0)).ToArray());
                }
                Console.Out.WriteLine(o.ToJsonString());
                return 0;
            }
            var table = new Table().AddColumns("#", "id", "piece");
            if (labels is not null) table.AddColumns("role", "kind", "mask");
            for (int i = 0; i < ids.Length; i++)
            {
                var row = new List<string> { i.ToString(), ids[i].ToString(), Markup.Escape(Display(tokenizer, ids[i], pieces[i])) };
                if (labels is not null) row.AddRange([labels[i].Role.ToString().ToLowerInvariant(), TokenLabel.KindName(labels[i].Kind), mask![i] ? "1" : "0"]);
                table.AddRow(row.ToArray());
            }
            AnsiConsole.Write(table);
            string summary = $"{ids.Length} tokens";
            if (mask is not null) summary += $", {mask.Count(m => m)} in the calibration mask";
            AnsiConsole.WriteLine(summary);
            return 0;
        }));
        return command;
    }

    static readonly JsonSerializerOptions Readable = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A piece as a quoted string; a token holding part of a UTF-8 character shows its bytes instead of U+FFFD.</summary>
    static string Display(HfTokenizer tokenizer, int id, string piece)
    {
        if (!piece.Contains('\uFFFD')) return JsonSerializer.Serialize(piece, Readable);
        return "bytes " + string.Join(" ", tokenizer.TokenBytes(id).Select(b => $"{b:X2}"));
    }

    static string ReadFile(string path) =>
        File.Exists(path) ? File.ReadAllText(path) : throw new NibbleException($"File not found: {path}; pass an existing text file to --file.");
}
