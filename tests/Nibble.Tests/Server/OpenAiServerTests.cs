using System.ClientModel;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Nibble.Cpu;
using Nibble.Engine;
using Nibble.Engine.Chat;
using Nibble.Server;
using OpenAI;
using OpenAI.Chat;
using MeAi = Microsoft.Extensions.AI;

namespace Nibble.Tests.Server;

/// <summary>One server on a free loopback port for the whole class, serving the bundled nano model on the CPU.</summary>
public sealed class NanoServerFixture : IAsyncLifetime
{
    public ChatModel Model { get; private set; } = null!;
    public WebApplication App { get; private set; } = null!;
    public Uri BaseUri { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Model = ChatModel.Load(TestPaths.BundledNano, CpuBackend.Instance, id: "nano");
        App = NibbleServer.Build(Model, new ServerOptions { Urls = "http://127.0.0.1:0" });
        await App.StartAsync();
        string address = App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseUri = new Uri(address + "/v1/");
    }

    public ChatClient Client(string model = "nano") =>
        new(model, new ApiKeyCredential("not-needed"), new OpenAIClientOptions { Endpoint = BaseUri, NetworkTimeout = TimeSpan.FromSeconds(60) });

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        Model.Dispose();
    }
}

public class OpenAiServerTests(NanoServerFixture server) : IClassFixture<NanoServerFixture>
{
    static readonly ChatMessage[] Question = [new UserChatMessage("What does the apt-get command do?")];

    string DirectGreedyReply(int maxTokens)
    {
        var ids = server.Model.EncodeChat(new System.Text.Json.Nodes.JsonArray(System.Text.Json.Nodes.JsonNode.Parse("""{"role":"user","content":"What does the apt-get command do?"}""")), null);
        return server.Model.Generator.Generate(ids, new SamplingOptions { MaxTokens = maxTokens }).Text;
    }

    [Fact]
    public async Task A_greedy_chat_completion_through_the_OpenAI_SDK_equals_direct_generation()
    {
        ChatCompletion reply = await server.Client().CompleteChatAsync(Question, new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24 });
        string expected = DirectGreedyReply(24);
        Assert.False(string.IsNullOrEmpty(expected));
        Assert.Equal(expected, reply.Content[0].Text);
        Assert.Equal(ChatMessageRole.Assistant, reply.Role);
        Assert.True(reply.Usage.InputTokenCount > 5);
        Assert.InRange(reply.Usage.OutputTokenCount, 1, 24);
        Assert.Equal(reply.Usage.OutputTokenCount == 24 ? ChatFinishReason.Length : ChatFinishReason.Stop, reply.FinishReason);
    }

    [Fact]
    public async Task Streaming_pieces_concatenate_to_the_non_streamed_reply_and_end_with_a_finish_reason()
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 20 };
        var text = new StringBuilder();
        int pieces = 0;
        ChatFinishReason? finish = null;
        await foreach (var update in server.Client().CompleteChatStreamingAsync(Question, options))
        {
            foreach (var part in update.ContentUpdate) { text.Append(part.Text); pieces++; }
            finish ??= update.FinishReason;
        }
        Assert.True(pieces > 1, $"expected several streamed pieces, got {pieces}");
        Assert.Equal(DirectGreedyReply(20), text.ToString());
        Assert.NotNull(finish);
    }

    [Fact]
    public async Task A_stop_sequence_cuts_the_reply_before_it()
    {
        string full = DirectGreedyReply(24);
        Assert.True(full.Length > 12, "the greedy reply is too short to pick a stop string from");
        string stop = full.Substring(full.Length / 2, 4);
        int cut = full.IndexOf(stop, StringComparison.Ordinal);
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24 };
        options.StopSequences.Add(stop);
        ChatCompletion reply = await server.Client().CompleteChatAsync(Question, options);
        Assert.Equal(full[..cut], reply.Content.Count == 0 ? "" : reply.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, reply.FinishReason);
    }

    [Fact]
    public async Task An_unknown_model_name_is_a_404_naming_the_served_model()
    {
        var e = await Assert.ThrowsAsync<ClientResultException>(() => server.Client("gpt-4o").CompleteChatAsync(Question));
        Assert.Equal(404, e.Status);
        Assert.Contains("nano", e.Message);
    }

    [Fact]
    public async Task Bad_requests_get_OpenAI_error_bodies_with_status_400()
    {
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        var notJson = await http.PostAsync("chat/completions", new StringContent("{not json", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
        Assert.Contains("\"invalid_request_error\"", await notJson.Content.ReadAsStringAsync());

        var noMessages = await http.PostAsync("chat/completions", new StringContent("""{"model":"nano","messages":[]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, noMessages.StatusCode);
        Assert.Contains("messages", await noMessages.Content.ReadAsStringAsync());

        var badTemperature = await http.PostAsync("completions", new StringContent("""{"prompt":"The","temperature":-1}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, badTemperature.StatusCode);
    }

    [Fact]
    public async Task Text_completions_and_the_model_list_work()
    {
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        var models = await http.GetStringAsync("models");
        Assert.Contains("\"id\":\"nano\"", models);
        var response = await http.PostAsync("completions", new StringContent("""{"model":"nano","prompt":"The Python interpreter","max_tokens":8,"temperature":0}""", Encoding.UTF8, "application/json"));
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        using var doc = System.Text.Json.JsonDocument.Parse(body);
        string text = doc.RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
        var direct = server.Model.Generator.Generate(server.Model.Tokenizer.Encode("The Python interpreter"), new SamplingOptions { MaxTokens = 8 });
        Assert.Equal(direct.Text, text);
        Assert.Equal(8, doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task The_IChatClient_adapter_gives_the_same_greedy_reply()
    {
        using MeAi.IChatClient client = new NibbleChatClient(server.Model);
        var response = await client.GetResponseAsync([new MeAi.ChatMessage(MeAi.ChatRole.User, "What does the apt-get command do?")],
            new MeAi.ChatOptions { Temperature = 0, MaxOutputTokens = 16 });
        Assert.Equal(DirectGreedyReply(16), response.Text);
        Assert.Equal("nano", response.ModelId);
        Assert.True(response.Usage!.OutputTokenCount > 0);
    }
}
