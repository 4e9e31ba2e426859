namespace Nibble.Cli;

/// <summary>The nano model shipped in the repository (models/nano), copied next to the CLI at build time.</summary>
public static class BundledModel
{
    public static string Path
    {
        get
        {
            string beside = System.IO.Path.Combine(AppContext.BaseDirectory, "models", "nano");
            if (Directory.Exists(beside)) return beside;
            // Running from a source checkout (dotnet run): walk up to the repository's models/nano.
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = System.IO.Path.Combine(dir.FullName, "models", "nano");
                if (File.Exists(System.IO.Path.Combine(candidate, "config.json"))) return candidate;
            }
            return beside;
        }
    }
}
