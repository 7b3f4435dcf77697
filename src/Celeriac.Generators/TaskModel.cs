using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;

namespace Celeriac.Generators;

/// <summary>An immutable array compared by its items, so that the incremental pipeline caches models.</summary>
internal readonly struct EquatableArray<T> : IEquatable<EquatableArray<T>>, IEnumerable<T>
    where T : IEquatable<T>
{
    private readonly ImmutableArray<T> _items;

    public EquatableArray(IEnumerable<T> items) => _items = items.ToImmutableArray();

    public ImmutableArray<T> Items => _items.IsDefault ? ImmutableArray<T>.Empty : _items;

    public int Count => Items.Length;

    public T this[int index] => Items[index];

    public bool Equals(EquatableArray<T> other) => Items.SequenceEqual(other.Items);

    public override bool Equals(object? obj) => obj is EquatableArray<T> other && Equals(other);

    public override int GetHashCode()
    {
        int hash = 17;
        foreach (T item in Items)
        {
            hash = (hash * 31) + (item?.GetHashCode() ?? 0);
        }

        return hash;
    }

    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)Items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

internal enum ParamKind
{
    Json,
    CancellationToken,
    Context,
    Service,
    VarArgs,
    VarKwargs,
}

internal enum Conversion
{
    Int32,
    Int64,
    Double,
    Boolean,
    String,
    JsonElement,
    Object,
    Other,
}

internal enum ReturnKind
{
    Void,
    Value,
    Task,
    TaskOf,
    ValueTask,
    ValueTaskOf,
}

/// <summary>A parameter as generated code binds it.</summary>
internal sealed record ParamModel(
    string Name,
    string Type,
    ParamKind Kind,
    Conversion Conversion,
    bool AcceptsNull,
    bool HasDefault,
    string? DefaultLiteral,
    bool IsModel,
    bool Validate,
    string? JsonContext,
    string? ElementType,
    Conversion ElementConversion,
    string DescribeType,
    string TypeOf);

/// <summary>A task as the generator found it: what its handle and its invoker need, as plain text.</summary>
internal sealed record TaskModel(
    string TaskName,
    string AttributeExpression,
    string ContainingType,
    string MethodName,
    string HandleName,
    bool IsStatic,
    bool IsPublic,
    ReturnKind ReturnKind,
    string? ResultType,
    EquatableArray<ParamModel> Parameters);

/// <summary>A diagnostic as data (its location kept as a file span) so that models stay comparable.</summary>
internal sealed record DiagnosticModel(string Id, string Message, string? File, int Start, int Length, int Line, int Column, int EndLine, int EndColumn);

/// <summary>What one [CeleriacTask] declaration yields: a model to generate, diagnostics, or both.</summary>
internal sealed record TaskResult(TaskModel? Model, EquatableArray<DiagnosticModel> Diagnostics, bool Skipped);
