using System.CommandLine;
using Nibble.Engine;
using Nibble.Engine.Chat;
using Nibble.Server;

namespace Nibble.Cli.Commands;

/// <summary>`nibble serve [model-dir]`: an OpenAI-compatible server (chat/completions, completions, models, SSE streaming).</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model-dir") { Description = "Hugging Face model directory, bf16 or quantized (default: the bundled nano model).", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => BundledModel.Path };
        var host = new Option<string>("--host") { Description = "Address to listen on (loopback by default).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port.", DefaultValueFactory = _ => 8000 };
        var name = new Option<string?>("--model-name") { Description = "Model id clients send (default: the directory name)." };
        var device = new Option<string>("--device") { Description = BackendFactory.Help, DefaultValueFactory = _ => "auto" };
        var cudaGraphs = CudaGraphsOption.Create();
        var command = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models).")
            { model, host, port, name, device, cudaGraphs };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            if (parse.GetValue(port) is < 1 or > 65535)
                throw new NibbleException($"Port {parse.GetValue(port)} is out of range; use 1-65535.");
            bool graphs = CudaGraphsOption.Parse(parse.GetValue(cudaGraphs));
            using var chat = ChatModel.Load(parse.GetValue(model)!, BackendFactory.Create(parse.GetValue(device)!), parse.GetValue(name));
            chat.Generator.CudaGraphs = graphs;
            string url = $"http://{parse.GetValue(host)}:{parse.GetValue(port)}";
            await using var app = NibbleServer.Build(chat, new ServerOptions { Urls = url });
            try { await app.StartAsync(ct); }
            catch (IOException e) { throw new NibbleException($"Cannot listen on {url} ({e.Message}); pick another --port or stop what uses it."); }
            Console.Error.WriteLine($"serving '{chat.Id}' ({chat.Model.Config.Architecture}, {chat.Model.Backend.Name}{(graphs ? "" : ", CUDA graphs off")}) at {url}/v1 — Ctrl-C stops.");
            try { await Task.Delay(Timeout.Infinite, ct); } catch (OperationCanceledException) { }
            await app.StopAsync(CancellationToken.None);
            return 0;
        }));
        return command;
    }
}
