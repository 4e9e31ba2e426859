using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nibble.Text.Templates;

namespace Nibble.Cli.Commands;

/// <summary>
/// `nibble chat-template render --template f.jinja --conversation c.json [--add-generation-prompt] [--bos s] [--eos s]`:
/// the rendered text on stdout, byte for byte (no added newline); errors on stderr with exit code 1.
/// </summary>
public static class ChatTemplateCommand
{
    public static Command Create()
    {
        var template = new Option<string?>("--template") { Description = "Jinja chat template file." };
        var model = new Option<string?>("--model") { Description = "Model directory whose chat template to use instead of --template." };
        var conversation = new Option<string>("--conversation") { Description = "Conversation JSON: {\"messages\": [...], \"tools\": [...] or null}.", Required = true };
        var addGen = new Option<bool>("--add-generation-prompt") { Description = "End with the assistant generation prompt." };
        var bos = new Option<string?>("--bos") { Description = "bos_token value." };
        var eos = new Option<string?>("--eos") { Description = "eos_token value." };
        var render = new Command("render", "Render a conversation with a chat template exactly as transformers' apply_chat_template does.")
            { template, model, conversation, addGen, bos, eos };
        render.SetAction(parse => CliErrors.Run(() =>
        {
            string? file = parse.GetValue(template), dir = parse.GetValue(model);
            if ((file is null) == (dir is null)) throw new NibbleException("Give exactly one of --template or --model.");
            ChatTemplate chat;
            if (file is not null)
            {
                if (!File.Exists(file)) throw new NibbleException($"Template file not found: {file}; pass an existing .jinja file to --template.");
                chat = ChatTemplate.FromFile(file);
            }
            else chat = ChatTemplate.Load(dir!);
            var (messages, tools) = ReadConversation(parse.GetValue(conversation)!);
            string text = chat.Render(messages, tools, parse.GetValue(addGen), bosToken: parse.GetValue(bos), eosToken: parse.GetValue(eos));
            using var stdout = Console.OpenStandardOutput();
            stdout.Write(new UTF8Encoding(false).GetBytes(text));
            return 0;
        }));
        var command = new Command("chat-template", "Chat template tools.") { render };
        return command;
    }

    /// <summary>Reads {"messages": [...], "tools": [...] or null}; a bare message array is accepted too.</summary>
    public static (JsonNode Messages, JsonNode? Tools) ReadConversation(string path)
    {
        if (!File.Exists(path)) throw new NibbleException($"Conversation file not found: {path}; pass a JSON file with {{\"messages\": [...]}}.");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e)
        {
            throw new NibbleException($"{path} is not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}; fix the conversation file.");
        }
        if (root is JsonArray array) return (array, null);
        if (root?["messages"] is not JsonArray messages)
            throw new NibbleException($"{path} has no \"messages\" array; write {{\"messages\": [...], \"tools\": [...] or null}}.");
        return (messages, root["tools"]);
    }
}
