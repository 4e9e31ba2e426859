namespace Nibble.Cli;

/// <summary>Turns user-facing errors into one line on stderr and exit code 1; bugs still crash loudly.</summary>
public static class CliErrors
{
    public static int Run(Func<int> action)
    {
        try { return action(); }
        catch (NibbleException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    public static async Task<int> RunAsync(Func<Task<int>> action)
    {
        try { return await action(); }
        catch (NibbleException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled.");
            return 130;
        }
    }
}
