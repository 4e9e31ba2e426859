using System.CommandLine;
using System.Text.Json;
using Nibble.Cpu;
using Nibble.Engine;
using Nibble.Models;
using Nibble.Text.Tokenization;

namespace Nibble.Cli.Commands;

/// <summary>`nibble generate [model-dir] --prompt ...`: stream a completion on the CPU reference backend.</summary>
public static class GenerateCommand
{
    public const string DefaultPrompt = "The Python interpreter";

    public static Command Create()
    {
        var model = new Argument<string>("model-dir") { Description = "Hugging Face model directory (default: the bundled nano model).", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => BundledModel.Path };
        var prompt = new Option<string>("--prompt", "-p") { Description = "Text to continue.", DefaultValueFactory = _ => DefaultPrompt };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 128 };
        var temperature = new Option<float>("--temperature", "-t") { Description = "Sampling temperature; 0 is greedy.", DefaultValueFactory = _ => 0.8f };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold (1 = off).", DefaultValueFactory = _ => 0.95f };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0 = off).", DefaultValueFactory = _ => 0 };
        var seed = new Option<int?>("--seed") { Description = "Random seed for reproducible sampling." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (text, token counts, speed) instead of streaming." };
        var device = new Option<string>("--device") { Description = BackendFactory.Help, DefaultValueFactory = _ => "cpu" };
        var cudaGraphs = CudaGraphsOption.Create();
        var command = new Command("generate", "Generate text from a prompt (CPU reference backend, or --device cuda), streaming it as it is produced.")
            { model, prompt, maxTokens, temperature, topP, topK, seed, json, device, cudaGraphs };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            string dir = parse.GetValue(model)!;
            var options = new SamplingOptions
            {
                Temperature = parse.GetValue(temperature), TopP = parse.GetValue(topP), TopK = parse.GetValue(topK),
                Seed = parse.GetValue(seed), MaxTokens = parse.GetValue(maxTokens),
            };
            options.Validate();
            bool graphs = CudaGraphsOption.Parse(parse.GetValue(cudaGraphs));
            var backend = BackendFactory.Create(parse.GetValue(device)!);
            using var backendScope = backend as IDisposable;
            using var lm = Nibble.Engine.Gpu.QuantizedModelLoader.Load(dir, backend);
            var generator = new Generator(lm, LoadTokenizer(dir)) { CudaGraphs = graphs };
            string text = parse.GetValue(prompt)!;
            var ids = generator.Tokenizer.Encode(text);
            if (parse.GetValue(json))
            {
                var result = await Task.Run(() => generator.Generate(ids, options, ct), ct);
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    prompt = text, text = result.Text, device = backend.Name, cuda_graphs = generator.CudaGraphs, prompt_tokens = result.PromptTokens, completion_tokens = result.TokenIds.Length,
                    finish_reason = result.FinishReason.ToString().ToLowerInvariant(),
                    prefill_seconds = Math.Round(result.PrefillTime.TotalSeconds, 4), decode_tokens_per_second = Math.Round(result.DecodeTokensPerSecond, 2),
                }));
                return 0;
            }
            Console.Write(text);
            var watch = System.Diagnostics.Stopwatch.StartNew();
            int count = 0;
            await foreach (var token in generator.GenerateTokensAsync(ids, options, ct))
            {
                Console.Write(token.Text);
                if (token.Id >= 0) count++;
            }
            Console.WriteLine();
            Console.Error.WriteLine($"[{count} tokens in {watch.Elapsed.TotalSeconds:F2} s, {count / Math.Max(1e-9, watch.Elapsed.TotalSeconds):F1} tokens/s, prompt {ids.Length} tokens]");
            return 0;
        }));
        return command;
    }

    internal static HfTokenizer LoadTokenizer(string dir)
    {
        if (!File.Exists(Path.Combine(dir, "tokenizer.json")))
            throw new NibbleException($"'{dir}' has no tokenizer.json; generation needs the model's tokenizer next to its weights.");
        return HfTokenizer.Load(dir);
    }
}
