using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;

namespace Celeriac.Generators;

/// <summary>
/// Generates, for every <c>[CeleriacTask]</c> method or class of a project: a typed handle (<c>CeleriacTasks.Add.DelayAsync(2, 3, ct)</c>)
/// whose arguments the compiler checks, and an invoker that binds the message's JSON arguments and calls the method
/// without reflection, registered from a module initializer so that <c>AddTasksFromAssembly</c> picks it.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class TaskGenerator : IIncrementalGenerator
{
    internal const string AttributeName = "Celeriac.CeleriacTaskAttribute";

    internal static readonly DiagnosticDescriptor s_private = new(
        "CELERIAC001", "Task is not accessible to generated code",
        "{0}", "Celeriac", DiagnosticSeverity.Info, isEnabledByDefault: true);

    internal static readonly DiagnosticDescriptor s_unsupported = new(
        "CELERIAC002", "Task signature is not supported",
        "{0}", "Celeriac", DiagnosticSeverity.Error, isEnabledByDefault: true);

    internal static readonly DiagnosticDescriptor s_badClass = new(
        "CELERIAC003", "Task class needs exactly one public Run or RunAsync",
        "{0}", "Celeriac", DiagnosticSeverity.Error, isEnabledByDefault: true);

    internal static readonly DiagnosticDescriptor s_duplicate = new(
        "CELERIAC004", "Two tasks have the same name",
        "{0}", "Celeriac", DiagnosticSeverity.Error, isEnabledByDefault: true);

    /// <inheritdoc />
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        IncrementalValuesProvider<TaskResult> tasks = context.SyntaxProvider.ForAttributeWithMetadataName(
            AttributeName,
            static (node, _) => node is MethodDeclarationSyntax or ClassDeclarationSyntax,
            static (ctx, ct) => ModelBuilder.Build(ctx, ct));

        IncrementalValuesProvider<(string Context, string Type)> jsonContexts = context.SyntaxProvider.ForAttributeWithMetadataName(
            "System.Text.Json.Serialization.JsonSerializableAttribute",
            static (node, _) => node is ClassDeclarationSyntax,
            static (ctx, _) => ctx.TargetSymbol is INamedTypeSymbol ctxType
                ? ctx.Attributes.Where(a => a.ConstructorArguments.Length == 1 && a.ConstructorArguments[0].Value is ITypeSymbol)
                    .Select(a => (ctxType.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat), ((ITypeSymbol)a.ConstructorArguments[0].Value!).ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat)))
                    .ToImmutableArray()
                : ImmutableArray<(string, string)>.Empty)
            .SelectMany(static (x, _) => x);

        IncrementalValueProvider<string> ns = context.AnalyzerConfigOptionsProvider.Combine(context.CompilationProvider.Select(static (c, _) => c.AssemblyName ?? "Tasks"))
            .Select(static (x, _) =>
            {
                x.Left.GlobalOptions.TryGetValue("build_property.RootNamespace", out string? root);
                return Emitter.SafeNamespace(string.IsNullOrWhiteSpace(root) ? x.Right : root!);
            });

        IncrementalValueProvider<((ImmutableArray<TaskResult> Tasks, ImmutableArray<(string Context, string Type)> Json), string Namespace)> all =
            tasks.Collect().Combine(jsonContexts.Collect()).Combine(ns);

        context.RegisterSourceOutput(all, static (spc, input) =>
        {
            ImmutableArray<TaskResult> results = input.Item1.Tasks;
            foreach (TaskResult r in results)
            {
                foreach (DiagnosticModel d in r.Diagnostics)
                {
                    spc.ReportDiagnostic(ToDiagnostic(d));
                }
            }

            var models = results.Where(r => r.Model is not null).Select(r => r.Model!).ToList();
            var names = new HashSet<string>();
            var unique = new List<TaskModel>();
            foreach (TaskModel m in models)
            {
                if (names.Add(m.TaskName))
                {
                    unique.Add(m);
                }
                else
                {
                    spc.ReportDiagnostic(Diagnostic.Create(s_duplicate, Location.None, $"Two tasks are named '{m.TaskName}' ({m.ContainingType}.{m.MethodName} is the second); task names must be unique."));
                }
            }

            if (unique.Count == 0 && !results.Any(r => r.Skipped))
            {
                return;
            }

            var json = input.Item1.Json.GroupBy(j => j.Type).ToDictionary(g => g.Key, g => g.First().Context);
            bool complete = !results.Any(r => r.Skipped);
            spc.AddSource("CeleriacTasks.g.cs", SourceText.From(Emitter.Emit(input.Item2, unique, json, complete), Encoding.UTF8));
        });
    }

    private static Diagnostic ToDiagnostic(DiagnosticModel d)
    {
        DiagnosticDescriptor descriptor = d.Id switch
        {
            "CELERIAC001" => s_private,
            "CELERIAC003" => s_badClass,
            _ => s_unsupported,
        };
        Location location = d.File is null
            ? Location.None
            : Location.Create(d.File, new TextSpan(d.Start, d.Length), new LinePositionSpan(new LinePosition(d.Line, d.Column), new LinePosition(d.EndLine, d.EndColumn)));
        return Diagnostic.Create(descriptor, location, d.Message);
    }
}

/// <summary>Reads a [CeleriacTask] declaration into a <see cref="TaskModel"/>, mirroring the reflection invoker's rules.</summary>
internal static class ModelBuilder
{
    internal static readonly SymbolDisplayFormat s_type = SymbolDisplayFormat.FullyQualifiedFormat
        .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    public static TaskResult Build(GeneratorAttributeSyntaxContext ctx, CancellationToken ct)
    {
        AttributeData attribute = ctx.Attributes[0];
        var diagnostics = new List<DiagnosticModel>();
        string? taskName = attribute.ConstructorArguments.Length == 1 ? attribute.ConstructorArguments[0].Value as string : null;
        if (string.IsNullOrWhiteSpace(taskName))
        {
            return new TaskResult(null, default, Skipped: false);
        }

        IMethodSymbol? method;
        INamedTypeSymbol? type;
        string handleName;
        if (ctx.TargetSymbol is INamedTypeSymbol cls)
        {
            type = cls;
            IMethodSymbol[] runs = cls.GetMembers().OfType<IMethodSymbol>()
                .Where(m => m.Name is "Run" or "RunAsync" && m.DeclaredAccessibility == Accessibility.Public && m.MethodKind == MethodKind.Ordinary)
                .ToArray();
            if (runs.Length != 1)
            {
                diagnostics.Add(Diag("CELERIAC003", $"Task class {cls.ToDisplayString()} ('{taskName}') must have exactly one public Run or RunAsync method (found {runs.Length}).", ctx.TargetNode));
                return new TaskResult(null, new EquatableArray<DiagnosticModel>(diagnostics), Skipped: true);
            }

            method = runs[0];
            handleName = cls.Name.EndsWith("Task", System.StringComparison.Ordinal) && cls.Name.Length > 4 ? cls.Name.Substring(0, cls.Name.Length - 4) : cls.Name;
        }
        else
        {
            method = ctx.TargetSymbol as IMethodSymbol;
            type = method?.ContainingType;
            handleName = method?.Name ?? "";
            if (handleName.EndsWith("Async", System.StringComparison.Ordinal) && handleName.Length > 5)
            {
                handleName = handleName.Substring(0, handleName.Length - 5);
            }
        }

        if (method is null || type is null)
        {
            return new TaskResult(null, default, Skipped: false);
        }

        string where = $"{type.ToDisplayString()}.{method.Name}";
        if (method.IsGenericMethod || type.IsGenericType)
        {
            diagnostics.Add(Diag("CELERIAC002", $"Task '{taskName}' ({where}): a generic method or type cannot be a task; give it concrete types.", ctx.TargetNode));
            return new TaskResult(null, new EquatableArray<DiagnosticModel>(diagnostics), Skipped: true);
        }

        foreach (IParameterSymbol p in method.Parameters)
        {
            if (p.RefKind != RefKind.None || p.Type.TypeKind == TypeKind.Pointer || p.Type.IsRefLikeType)
            {
                diagnostics.Add(Diag("CELERIAC002", $"Task '{taskName}' ({where}): parameter '{p.Name}' is {(p.RefKind != RefKind.None ? "passed by reference" : "a pointer or ref struct")}; task arguments come from JSON and must be plain values.", ctx.TargetNode));
            }
        }

        if (method.ReturnsByRef || method.ReturnsByRefReadonly || method.ReturnType.IsRefLikeType)
        {
            diagnostics.Add(Diag("CELERIAC002", $"Task '{taskName}' ({where}): a task cannot return by reference or a ref struct.", ctx.TargetNode));
        }

        if (diagnostics.Count > 0)
        {
            return new TaskResult(null, new EquatableArray<DiagnosticModel>(diagnostics), Skipped: true);
        }

        if (!Reachable(method) || !Reachable(type))
        {
            diagnostics.Add(Diag("CELERIAC001", $"Task '{taskName}' ({where}) is private or protected (or inside such a type): it runs through reflection, not a generated invoker, and has no typed handle. Make it internal or public.", ctx.TargetNode));
            return new TaskResult(null, new EquatableArray<DiagnosticModel>(diagnostics), Skipped: true);
        }

        ct.ThrowIfCancellationRequested();
        Compilation compilation = ctx.SemanticModel.Compilation;
        var parameters = method.Parameters.Select(p => Param(p, compilation)).ToList();
        (ReturnKind kind, string? result) = Return(method.ReturnType);
        bool isPublic = IsPublic(method) && IsPublic(type) &&
            parameters.Where(p => p.Kind is ParamKind.Json or ParamKind.VarArgs).All(p => method.Parameters.First(mp => mp.Name == p.Name).Type is var t && IsPublicType(t)) &&
            (result is null || IsPublicType(Unwrap(method.ReturnType)));

        var model = new TaskModel(
            taskName!,
            AttributeExpression(attribute),
            type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            method.Name,
            Emitter.Pascal(handleName),
            method.IsStatic,
            isPublic,
            kind,
            result,
            new EquatableArray<ParamModel>(parameters));
        return new TaskResult(model, default, Skipped: false);
    }

    private static DiagnosticModel Diag(string id, string message, SyntaxNode node)
    {
        Location location = node is MethodDeclarationSyntax m ? m.Identifier.GetLocation() : node is ClassDeclarationSyntax c ? c.Identifier.GetLocation() : node.GetLocation();
        FileLinePositionSpan span = location.GetLineSpan();
        return new DiagnosticModel(id, message, span.Path, location.SourceSpan.Start, location.SourceSpan.Length, span.StartLinePosition.Line, span.StartLinePosition.Character, span.EndLinePosition.Line, span.EndLinePosition.Character);
    }

    private static bool Reachable(ISymbol symbol)
    {
        for (ISymbol? s = symbol; s is not null and not INamespaceSymbol; s = s.ContainingSymbol)
        {
            if (s.DeclaredAccessibility is Accessibility.Private or Accessibility.Protected or Accessibility.ProtectedAndInternal)
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsPublic(ISymbol symbol)
    {
        for (ISymbol? s = symbol; s is not null and not INamespaceSymbol; s = s.ContainingSymbol)
        {
            if (s.DeclaredAccessibility != Accessibility.Public)
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsPublicType(ITypeSymbol t) => t switch
    {
        IArrayTypeSymbol a => IsPublicType(a.ElementType),
        ITypeParameterSymbol => false,
        INamedTypeSymbol n => IsPublic(n) && n.TypeArguments.All(IsPublicType),
        _ => true,
    };

    private static ITypeSymbol Unwrap(ITypeSymbol t) =>
        t is INamedTypeSymbol { IsGenericType: true } n && n.TypeArguments.Length == 1 && n.ConstructedFrom.ToDisplayString() is "System.Threading.Tasks.Task<TResult>" or "System.Threading.Tasks.ValueTask<TResult>"
            ? n.TypeArguments[0]
            : t;

    private static (ReturnKind Kind, string? Result) Return(ITypeSymbol t)
    {
        if (t.SpecialType == SpecialType.System_Void)
        {
            return (ReturnKind.Void, null);
        }

        string name = t.OriginalDefinition.ToDisplayString();
        return name switch
        {
            "System.Threading.Tasks.Task" => (ReturnKind.Task, null),
            "System.Threading.Tasks.ValueTask" => (ReturnKind.ValueTask, null),
            "System.Threading.Tasks.Task<TResult>" => (ReturnKind.TaskOf, ((INamedTypeSymbol)t).TypeArguments[0].ToDisplayString(s_type)),
            "System.Threading.Tasks.ValueTask<TResult>" => (ReturnKind.ValueTaskOf, ((INamedTypeSymbol)t).TypeArguments[0].ToDisplayString(s_type)),
            _ => (ReturnKind.Value, t.ToDisplayString(s_type)),
        };
    }

    private static ParamModel Param(IParameterSymbol p, Compilation compilation)
    {
        ITypeSymbol t = p.Type;
        string typeName = t.ToDisplayString(s_type);
        string plain = t.OriginalDefinition.ToDisplayString();
        ParamKind kind =
            plain == "System.Threading.CancellationToken" ? ParamKind.CancellationToken :
            plain == "Celeriac.TaskContext" ? ParamKind.Context :
            p.IsParams && t is IArrayTypeSymbol ? ParamKind.VarArgs :
            p.Name == "kwargs" && IsKwargsType(t) ? ParamKind.VarKwargs :
            p.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == "Celeriac.InjectAttribute") || IsServiceType(t) ? ParamKind.Service :
            ParamKind.Json;

        bool acceptsNull = t.IsReferenceType
            ? plain == "object" || t.NullableAnnotation != NullableAnnotation.NotAnnotated
            : t.OriginalDefinition.SpecialType == SpecialType.System_Nullable_T;
        if (plain == "System.Text.Json.JsonElement")
        {
            acceptsNull = true;
        }

        ITypeSymbol core = t is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nt ? nt.TypeArguments[0] : t;
        string? element = null;
        Conversion elementConversion = Conversion.Other;
        if (kind == ParamKind.VarArgs)
        {
            ITypeSymbol e = ((IArrayTypeSymbol)t).ElementType;
            element = e.ToDisplayString(s_type);
            elementConversion = ConversionOf(e is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } ne ? ne.TypeArguments[0] : e);
        }

        bool isModel = kind == ParamKind.Json && IsModel(t);
        bool validate = isModel && HasValidation(t);
        return new ParamModel(
            p.Name,
            typeName,
            kind,
            ConversionOf(core),
            acceptsNull,
            p.HasExplicitDefaultValue,
            p.HasExplicitDefaultValue ? DefaultLiteral(p, typeName) : null,
            isModel,
            validate,
            null,
            element,
            elementConversion,
            core.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            t.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat));
    }

    private static Conversion ConversionOf(ITypeSymbol t) => t.SpecialType switch
    {
        SpecialType.System_Int32 => Conversion.Int32,
        SpecialType.System_Int64 => Conversion.Int64,
        SpecialType.System_Double => Conversion.Double,
        SpecialType.System_Boolean => Conversion.Boolean,
        SpecialType.System_String => Conversion.String,
        SpecialType.System_Object => Conversion.Object,
        _ => t.ToDisplayString() == "System.Text.Json.JsonElement" ? Conversion.JsonElement : Conversion.Other,
    };

    private static bool IsKwargsType(ITypeSymbol t) =>
        t is INamedTypeSymbol { IsGenericType: true } n &&
        n.OriginalDefinition.ToDisplayString() is "System.Collections.Generic.IReadOnlyDictionary<TKey, TValue>" or "System.Collections.Generic.Dictionary<TKey, TValue>" or "System.Collections.Generic.IDictionary<TKey, TValue>" &&
        n.TypeArguments[0].SpecialType == SpecialType.System_String && n.TypeArguments[1].ToDisplayString() == "System.Text.Json.JsonElement";

    private static readonly HashSet<string> s_collections =
    [
        "System.Collections.Generic.IEnumerable<T>", "System.Collections.Generic.IList<T>", "System.Collections.Generic.IReadOnlyList<T>",
        "System.Collections.Generic.ICollection<T>", "System.Collections.Generic.IReadOnlyCollection<T>", "System.Collections.Generic.IDictionary<TKey, TValue>",
        "System.Collections.Generic.IReadOnlyDictionary<TKey, TValue>", "System.Collections.Generic.ISet<T>",
    ];

    private static bool IsServiceType(ITypeSymbol t)
    {
        if (t.ToDisplayString() == "System.IServiceProvider")
        {
            return true;
        }

        if (t.TypeKind != TypeKind.Interface && !t.IsAbstract)
        {
            return false;
        }

        return !(t is INamedTypeSymbol { IsGenericType: true } n && s_collections.Contains(n.OriginalDefinition.ToDisplayString()));
    }

    private static bool IsModel(ITypeSymbol t) =>
        t.TypeKind == TypeKind.Class && !t.IsAbstract && t.SpecialType is not (SpecialType.System_String or SpecialType.System_Object) &&
        !t.AllInterfaces.Any(i => i.ToDisplayString() == "System.Collections.IEnumerable");

    private static bool HasValidation(ITypeSymbol t)
    {
        if (t.AllInterfaces.Any(i => i.ToDisplayString() == "System.ComponentModel.DataAnnotations.IValidatableObject"))
        {
            return true;
        }

        for (ITypeSymbol? s = t; s is not null; s = s.BaseType)
        {
            foreach (IPropertySymbol prop in s.GetMembers().OfType<IPropertySymbol>())
            {
                if (prop.GetAttributes().Any(a => IsValidationAttribute(a.AttributeClass)))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static bool IsValidationAttribute(INamedTypeSymbol? a)
    {
        for (INamedTypeSymbol? s = a; s is not null; s = s.BaseType)
        {
            if (s.ToDisplayString() == "System.ComponentModel.DataAnnotations.ValidationAttribute")
            {
                return true;
            }
        }

        return false;
    }

    private static string DefaultLiteral(IParameterSymbol p, string typeName)
    {
        object? value = p.ExplicitDefaultValue;
        if (value is null)
        {
            return $"default({typeName})!";
        }

        string literal = value switch
        {
            string s => Microsoft.CodeAnalysis.CSharp.SymbolDisplay.FormatLiteral(s, quote: true),
            char c => Microsoft.CodeAnalysis.CSharp.SymbolDisplay.FormatLiteral(c, quote: true),
            bool b => b ? "true" : "false",
            float f => f.ToString("R", System.Globalization.CultureInfo.InvariantCulture) + "F",
            double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture) + "D",
            decimal m => m.ToString(System.Globalization.CultureInfo.InvariantCulture) + "M",
            _ => System.Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "0",
        };
        return $"({typeName})({literal})";
    }

    private static string AttributeExpression(AttributeData a)
    {
        var sb = new StringBuilder("new global::Celeriac.CeleriacTaskAttribute(");
        sb.Append(Literal(a.ConstructorArguments[0])).Append(')');
        if (a.NamedArguments.Length > 0)
        {
            sb.Append(" { ");
            sb.Append(string.Join(", ", a.NamedArguments.Select(n => $"{n.Key} = {Literal(n.Value)}")));
            sb.Append(" }");
        }

        return sb.ToString();
    }

    private static string Literal(TypedConstant c)
    {
        if (c.Kind == TypedConstantKind.Array)
        {
            string element = ((IArrayTypeSymbol)c.Type!).ElementType.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat);
            return $"new {element}[] {{ {string.Join(", ", c.Values.Select(Literal))} }}";
        }

        return c.Value switch
        {
            null => "null",
            ITypeSymbol t => $"typeof({t.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat)})",
            string s => Microsoft.CodeAnalysis.CSharp.SymbolDisplay.FormatLiteral(s, quote: true),
            bool b => b ? "true" : "false",
            double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture) + "D",
            _ => c.Kind == TypedConstantKind.Enum
                ? $"({c.Type!.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat)})({System.Convert.ToString(c.Value, System.Globalization.CultureInfo.InvariantCulture)})"
                : System.Convert.ToString(c.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "null",
        };
    }
}
