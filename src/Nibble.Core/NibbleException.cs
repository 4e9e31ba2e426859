namespace Nibble;

/// <summary>
/// An error meant for the user: one sentence naming the problem and the fix.
/// The CLI prints its message alone (no stack trace); anything else is a bug.
/// </summary>
public class NibbleException : Exception
{
    public NibbleException(string message) : base(message) { }
    public NibbleException(string message, Exception inner) : base(message, inner) { }
}
