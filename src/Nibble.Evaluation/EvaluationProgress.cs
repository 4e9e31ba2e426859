namespace Nibble.Evaluation;

/// <summary>Progress of a long evaluation: <paramref name="Done"/> of <paramref name="Total"/> units (windows, traces) of one stage.</summary>
public sealed record EvaluationProgress(string Stage, int Done, int Total);
