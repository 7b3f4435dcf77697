namespace Celeriac.Database.Pickle;

/// <summary>A pickle that could not be read: malformed, truncated, over a limit, or not a JSON-like value.</summary>
public class UnpicklingException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public UnpicklingException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public UnpicklingException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public UnpicklingException(string message, Exception innerException) : base(message, innerException)
    {
    }
}

/// <summary>
/// A pickle refused because reading it would import or call code (<c>GLOBAL</c>, <c>STACK_GLOBAL</c>, <c>REDUCE</c>,
/// <c>BUILD</c>, <c>INST</c>, <c>OBJ</c>, <c>NEWOBJ</c>, <c>EXT*</c>, persistent ids, out-of-band buffers). Nothing was run.
/// </summary>
public sealed class UnsafePickleException : UnpicklingException
{
    /// <summary>Creates the exception.</summary>
    public UnsafePickleException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public UnsafePickleException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public UnsafePickleException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a refused opcode.</summary>
    /// <param name="opcode">The opcode's name, as Python's <c>pickletools</c> spells it.</param>
    /// <param name="name">The global it names (<c>module.qualname</c>), if any.</param>
    /// <param name="offset">Its byte offset in the pickle.</param>
    internal UnsafePickleException(string opcode, string? name, long offset)
        : base(name is null
            ? $"Refused pickle opcode {opcode} at offset {offset}: it would call or import code. Only JSON-like values (None, bool, int, float, str, bytes, list, tuple, dict) are read."
            : $"Refused pickle opcode {opcode} '{name}' at offset {offset}: it would import and call code. Only JSON-like values (None, bool, int, float, str, bytes, list, tuple, dict) are read.")
    {
        Opcode = opcode;
        Name = name;
        Offset = offset;
    }

    /// <summary>The refused opcode (e.g. <c>STACK_GLOBAL</c>).</summary>
    public string? Opcode { get; }

    /// <summary>The global it named (e.g. <c>posix.system</c>), or <see langword="null"/>.</summary>
    public string? Name { get; }

    /// <summary>Its offset in the pickle.</summary>
    public long Offset { get; }
}
