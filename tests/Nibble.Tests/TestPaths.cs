namespace Nibble.Tests;

/// <summary>Where the repository's bundled model and the team's shared models live.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string BundledNano => Path.Combine(RepoRoot, "models", "nano");

    /// <summary>../shared next to the checkout; absent on machines outside the team (tests then skip).</summary>
    public static string SharedDir => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    public static string SharedModel(string name) => Path.Combine(SharedDir, "models", name);

    /// <summary>Returns the shared model directory, or skips the test with a reason when it is absent.</summary>
    public static string RequireSharedModel(string name)
    {
        string dir = SharedModel(name);
        Assert.SkipUnless(Directory.Exists(dir), $"shared model '{name}' not found at {dir} (../shared exists only on team machines)");
        return dir;
    }

    public static string RequireSharedData(string file)
    {
        string path = Path.Combine(SharedDir, "data", file);
        Assert.SkipUnless(File.Exists(path) || Directory.Exists(path), $"shared data '{file}' not found at {path} (../shared exists only on team machines)");
        return path;
    }

    /// <summary>A fresh temporary directory, deleted when disposed.</summary>
    public static TempDir CreateTempDir() => new();

    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "nibble-tests-" + Guid.NewGuid().ToString("N"));
        public TempDir() => Directory.CreateDirectory(Path);
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
    }

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Nibble.slnx"))) return dir.FullName;
        throw new InvalidOperationException("Tests must run inside the repository (Nibble.slnx not found above " + AppContext.BaseDirectory + ").");
    }
}
