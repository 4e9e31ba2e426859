using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;
using Nibble.Engine;
using Nibble.Models;
using Nibble.Text.Templates;

namespace Nibble.Cli.Commands;

/// <summary>`nibble chat [model-dir]`: an interactive conversation through the model's chat template (CPU backend).</summary>
public static class ChatCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model-dir") { Description = "Hugging Face model directory (default: the bundled nano model).", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => BundledModel.Path };
        var system = new Option<string?>("--system") { Description = "System prompt (default: the template's own)." };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens per reply.", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature", "-t") { Description = "Sampling temperature; 0 is greedy.", DefaultValueFactory = _ => 0.7f };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold (1 = off).", DefaultValueFactory = _ => 0.9f };
        var seed = new Option<int?>("--seed") { Description = "Random seed for reproducible replies." };
        var device = new Option<string>("--device") { Description = BackendFactory.Help, DefaultValueFactory = _ => "cpu" };
        var cudaGraphs = CudaGraphsOption.Create();
        var command = new Command("chat", "Chat with a model interactively (type /reset to start over, /exit or Ctrl-D to leave).")
            { model, system, maxTokens, temperature, topP, seed, device, cudaGraphs };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            string dir = parse.GetValue(model)!;
            var options = new SamplingOptions
            {
                Temperature = parse.GetValue(temperature), TopP = parse.GetValue(topP), Seed = parse.GetValue(seed), MaxTokens = parse.GetValue(maxTokens),
            };
            options.Validate();
            bool graphs = CudaGraphsOption.Parse(parse.GetValue(cudaGraphs));
            var template = ChatTemplate.Load(dir);
            var backend = BackendFactory.Create(parse.GetValue(device)!);
            using var backendScope = backend as IDisposable;
            using var lm = Nibble.Engine.Gpu.QuantizedModelLoader.Load(dir, backend);
            var generator = new Generator(lm, GenerateCommand.LoadTokenizer(dir)) { CudaGraphs = graphs };
            var messages = new JsonArray();
            void Reset()
            {
                messages.Clear();
                if (parse.GetValue(system) is string sys) messages.Add(Message("system", sys));
            }
            Reset();
            Console.Error.WriteLine($"chatting with {dir} ({lm.Config.Architecture}); /reset starts over, /exit leaves.");
            while (!ct.IsCancellationRequested)
            {
                Console.Error.Write("> ");
                string? line = Console.ReadLine();
                if (line is null || line.Trim() == "/exit") break;
                if (line.Trim() == "/reset") { Reset(); continue; }
                if (line.Trim().Length == 0) continue;
                messages.Add(Message("user", line));
                var ids = generator.ChatPrompt(template, messages);
                if (ids.Length + 1 >= lm.Config.MaxPositionEmbeddings)
                {
                    Console.Error.WriteLine("the conversation no longer fits the model's context; starting over.");
                    Reset();
                    continue;
                }
                var reply = new StringBuilder();
                await foreach (var token in generator.GenerateTokensAsync(ids, options, ct))
                {
                    Console.Write(token.Text);
                    reply.Append(token.Text);
                }
                Console.WriteLine();
                messages.Add(Message("assistant", reply.ToString()));
            }
            return 0;
        }));
        return command;
    }

    static JsonNode Message(string role, string content) => new JsonObject { ["role"] = role, ["content"] = content };
}
