using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Nibble.Engine.Chat;

namespace Nibble.Server;

/// <summary>How to serve: where to listen. The model is loaded by the caller and handed over.</summary>
public sealed record ServerOptions
{
    /// <summary>Kestrel URLs; loopback by default (put a reverse proxy in front to expose it).</summary>
    public string Urls { get; init; } = "http://127.0.0.1:8000";
    public LogLevel LogLevel { get; init; } = LogLevel.Warning;
}

/// <summary>An OpenAI-compatible HTTP server (ASP.NET Core minimal APIs) over one <see cref="ChatModel"/>.</summary>
public static class NibbleServer
{
    public static WebApplication Build(ChatModel model, ServerOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(options.Urls);
        builder.Logging.SetMinimumLevel(options.LogLevel);
        builder.Services.AddSingleton(model);
        var app = builder.Build();
        app.MapOpenAi(model);
        return app;
    }
}
