using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace Celeriac.Tests.Architecture;

/// <summary>
/// Reads a compiled assembly and its portable PDB and builds the folder graph of its source.
/// A type's folder is where its source file is, not its namespace: the core's App folder uses the root
/// namespace users import, and a type may keep its public namespace after moving folder. The PDB knows
/// each method's document and, for types without method bodies (interfaces, enums, delegates), lists the
/// type's documents in its TypeDefinitionDocuments record. Nested types (lambda closures, async state
/// machines, and real nested types) belong to their outermost type's folder. Not followed: types named only
/// inside an attribute's arguments (<c>[Attr(typeof(X))]</c>), which no code of the core relies on.
/// </summary>
internal static class SourceFolderMap
{
    // Roslyn's custom debug information kind for the documents of a type that no method body points to.
    private static readonly Guid s_typeDefinitionDocuments = new("932E74BC-DBA9-4478-8D46-0F32A7BAB3D3");

    private static readonly Dictionary<short, OperandType> s_operands = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value, o => o.OperandType);

    public sealed record Result(FolderGraph Graph, IReadOnlyDictionary<string, string> FolderOfType, IReadOnlyList<string> Problems);

    /// <summary>
    /// Builds the graph of <paramref name="assemblyPath"/>, whose sources live under
    /// <c>src/&lt;assembly name&gt;/&lt;folder&gt;/</c>.
    /// </summary>
    public static Result Build(string assemblyPath)
    {
        string assemblyName = Path.GetFileNameWithoutExtension(assemblyPath);
        string pdbPath = Path.ChangeExtension(assemblyPath, ".pdb");
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        using MetadataReaderProvider pdbProvider = File.Exists(pdbPath)
            ? MetadataReaderProvider.FromPortablePdbStream(File.OpenRead(pdbPath))
            : pe.ReadEmbeddedPortablePdbDebugDirectoryData(
                pe.ReadDebugDirectory().FirstOrDefault(d => d.Type == DebugDirectoryEntryType.EmbeddedPortablePdb) is { DataSize: > 0 } embedded
                    ? embedded
                    : throw new FileNotFoundException($"No portable PDB beside {assemblyPath} nor embedded in it: the layering test maps types to folders by their source files.", pdbPath));
        MetadataReader md = pe.GetMetadataReader();
        MetadataReader pdb = pdbProvider.GetMetadataReader();

        var problems = new List<string>();
        var ownFolders = new Dictionary<TypeDefinitionHandle, HashSet<string>>();
        void Note(TypeDefinitionHandle type, DocumentHandle document)
        {
            // A nested type's source is its outer type's: an async method's body lives in its state machine, so a
            // class whose methods are all async has documents only through its nested types.
            type = Outermost(md, type);
            if (FolderOf(pdb.GetString(pdb.GetDocument(document).Name), assemblyName) is { } folder)
            {
                if (!ownFolders.TryGetValue(type, out HashSet<string>? set))
                {
                    ownFolders[type] = set = new(StringComparer.Ordinal);
                }

                set.Add(folder);
            }
        }

        foreach (MethodDefinitionHandle method in md.MethodDefinitions)
        {
            MethodDebugInformation info = pdb.GetMethodDebugInformation(method.ToDebugInformationHandle());
            TypeDefinitionHandle type = md.GetMethodDefinition(method).GetDeclaringType();
            if (!info.Document.IsNil)
            {
                Note(type, info.Document);
            }
            else if (!info.SequencePointsBlob.IsNil)
            {
                // A method whose body spans several documents has no single document; its points name them.
                foreach (SequencePoint point in info.GetSequencePoints())
                {
                    Note(type, point.Document);
                }
            }
        }

        foreach (CustomDebugInformationHandle handle in pdb.CustomDebugInformation)
        {
            CustomDebugInformation cdi = pdb.GetCustomDebugInformation(handle);
            if (cdi.Parent.Kind == HandleKind.TypeDefinition && pdb.GetGuid(cdi.Kind) == s_typeDefinitionDocuments)
            {
                BlobReader blob = pdb.GetBlobReader(cdi.Value);
                while (blob.RemainingBytes > 0)
                {
                    Note((TypeDefinitionHandle)cdi.Parent, MetadataTokens.DocumentHandle(blob.ReadCompressedInteger()));
                }
            }
        }

        var folderOf = new Dictionary<TypeDefinitionHandle, string>();
        foreach (TypeDefinitionHandle handle in md.TypeDefinitions)
        {
            TypeDefinitionHandle outer = Outermost(md, handle);
            if (ownFolders.TryGetValue(outer, out HashSet<string>? folders))
            {
                if (folders.Count > 1)
                {
                    problems.Add($"{Name(md, outer)} is declared in several folders: {string.Join(", ", folders.Order(StringComparer.Ordinal))}");
                }

                folderOf[handle] = folders.Order(StringComparer.Ordinal).First();
            }
            else if (IsOurs(md, outer, assemblyName))
            {
                problems.Add($"{Name(md, outer)} has no source document in the PDB: cannot tell its folder");
            }

            // Anything else is synthesized by the compiler (<Module>, <PrivateImplementationDetails>, embedded
            // attributes, a source generator's helpers): no folder, so it makes no edge.
        }

        // A type whose namespace names another folder (one moved to keep its public namespace) says where it is.
        string Label(TypeDefinitionHandle handle, string folder)
        {
            TypeDefinitionHandle outer = Outermost(md, handle);
            string ns = md.GetString(md.GetTypeDefinition(outer).Namespace);
            return ns.StartsWith(assemblyName + ".", StringComparison.Ordinal) && ns[(assemblyName.Length + 1)..] != folder
                ? $"{Name(md, outer)} (in {folder}/)"
                : Name(md, outer);
        }

        var graph = new FolderGraph();
        var provider = new TypeCollector();
        foreach ((TypeDefinitionHandle type, string folder) in folderOf)
        {
            foreach (TypeDefinitionHandle used in Uses(md, pe, type, provider))
            {
                if (folderOf.TryGetValue(used, out string? target) && target != folder)
                {
                    graph.Add(folder, target, Label(type, folder), Label(used, target));
                }
            }
        }

        return new Result(
            graph,
            folderOf.ToDictionary(p => Name(md, p.Key), p => p.Value, StringComparer.Ordinal),
            problems);
    }

    /// <summary>The folder right under <c>src/&lt;assembly&gt;/</c>, or null for a document elsewhere (generated code).</summary>
    internal static string? FolderOf(string document, string assemblyName)
    {
        string path = document.Replace('\\', '/');
        string root = "/src/" + assemblyName + "/";
        int at = path.LastIndexOf(root, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        string rest = path[(at + root.Length)..];
        int slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return "(root)";
        }

        string folder = rest[..slash];
        return folder is "obj" or "bin" ? null : folder;
    }

    private static bool IsOurs(MetadataReader md, TypeDefinitionHandle handle, string assemblyName)
    {
        TypeDefinition type = md.GetTypeDefinition(handle);
        string ns = md.GetString(type.Namespace);
        return !md.GetString(type.Name).StartsWith('<') && (ns == assemblyName || ns.StartsWith(assemblyName + ".", StringComparison.Ordinal));
    }

    private static TypeDefinitionHandle Outermost(MetadataReader md, TypeDefinitionHandle handle)
    {
        while (md.GetTypeDefinition(handle).GetDeclaringType() is { IsNil: false } outer)
        {
            handle = outer;
        }

        return handle;
    }

    private static string Name(MetadataReader md, TypeDefinitionHandle handle)
    {
        TypeDefinition type = md.GetTypeDefinition(handle);
        string name = md.GetString(type.Name);
        return type.GetDeclaringType() is { IsNil: false } outer
            ? Name(md, outer) + "+" + name
            : md.GetString(type.Namespace) is { Length: > 0 } ns ? ns + "." + name : name;
    }

    /// <summary>Every type definition of the same assembly that a type names: in its declaration, its members' signatures and attributes, and its IL.</summary>
    private static HashSet<TypeDefinitionHandle> Uses(MetadataReader md, PEReader pe, TypeDefinitionHandle handle, TypeCollector provider)
    {
        var used = new HashSet<TypeDefinitionHandle>();
        void AddAll(ImmutableArray<TypeDefinitionHandle> types) => used.UnionWith(types);
        void AddEntity(EntityHandle entity) => AddAll(provider.FromEntity(md, entity));
        void AddAttributes(CustomAttributeHandleCollection attributes)
        {
            foreach (CustomAttributeHandle attribute in attributes)
            {
                AddEntity(md.GetCustomAttribute(attribute).Constructor);
            }
        }

        void AddGenericParameters(GenericParameterHandleCollection parameters)
        {
            foreach (GenericParameterHandle parameter in parameters)
            {
                foreach (GenericParameterConstraintHandle constraint in md.GetGenericParameter(parameter).GetConstraints())
                {
                    AddEntity(md.GetGenericParameterConstraint(constraint).Type);
                }
            }
        }

        TypeDefinition type = md.GetTypeDefinition(handle);
        if (!type.BaseType.IsNil)
        {
            AddEntity(type.BaseType);
        }

        foreach (InterfaceImplementationHandle implementation in type.GetInterfaceImplementations())
        {
            AddEntity(md.GetInterfaceImplementation(implementation).Interface);
        }

        AddAttributes(type.GetCustomAttributes());
        AddGenericParameters(type.GetGenericParameters());

        foreach (FieldDefinitionHandle fieldHandle in type.GetFields())
        {
            FieldDefinition field = md.GetFieldDefinition(fieldHandle);
            AddAll(field.DecodeSignature(provider, null));
            AddAttributes(field.GetCustomAttributes());
        }

        foreach (PropertyDefinitionHandle propertyHandle in type.GetProperties())
        {
            PropertyDefinition property = md.GetPropertyDefinition(propertyHandle);
            MethodSignature<ImmutableArray<TypeDefinitionHandle>> signature = property.DecodeSignature(provider, null);
            AddAll(signature.ReturnType);
            signature.ParameterTypes.ToList().ForEach(AddAll);
            AddAttributes(property.GetCustomAttributes());
        }

        foreach (EventDefinitionHandle eventHandle in type.GetEvents())
        {
            EventDefinition @event = md.GetEventDefinition(eventHandle);
            AddEntity(@event.Type);
            AddAttributes(@event.GetCustomAttributes());
        }

        foreach (MethodDefinitionHandle methodHandle in type.GetMethods())
        {
            MethodDefinition method = md.GetMethodDefinition(methodHandle);
            MethodSignature<ImmutableArray<TypeDefinitionHandle>> signature = method.DecodeSignature(provider, null);
            AddAll(signature.ReturnType);
            signature.ParameterTypes.ToList().ForEach(AddAll);
            AddAttributes(method.GetCustomAttributes());
            AddGenericParameters(method.GetGenericParameters());
            foreach (ParameterHandle parameter in method.GetParameters())
            {
                AddAttributes(md.GetParameter(parameter).GetCustomAttributes());
            }

            if (method.RelativeVirtualAddress == 0)
            {
                continue;
            }

            MethodBodyBlock body = pe.GetMethodBody(method.RelativeVirtualAddress);
            if (!body.LocalSignature.IsNil)
            {
                AddEntity(body.LocalSignature);
            }

            foreach (ExceptionRegion region in body.ExceptionRegions)
            {
                if (!region.CatchType.IsNil)
                {
                    AddEntity(region.CatchType);
                }
            }

            foreach (EntityHandle token in TokensIn(body.GetILReader()))
            {
                AddEntity(token);
            }
        }

        foreach (MethodImplementationHandle implementation in type.GetMethodImplementations())
        {
            AddEntity(md.GetMethodImplementation(implementation).MethodDeclaration);
        }

        return used;
    }

    /// <summary>The metadata tokens that IL instructions take as operands (types, members, signatures).</summary>
    private static List<EntityHandle> TokensIn(BlobReader il)
    {
        var tokens = new List<EntityHandle>();
        while (il.RemainingBytes > 0)
        {
            short code = il.ReadByte();
            if (code == 0xFE)
            {
                code = unchecked((short)(0xFE00 | il.ReadByte()));
            }

            switch (s_operands[code])
            {
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    il.Offset += 1;
                    break;
                case OperandType.InlineVar:
                    il.Offset += 2;
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    il.Offset += 8;
                    break;
                case OperandType.InlineSwitch:
                    // Read the count first: "Offset += 4 * ReadInt32()" would take Offset before the read moved it.
                    int targets = il.ReadInt32();
                    il.Offset += 4 * targets;
                    break;
                case OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineTok or OperandType.InlineType or OperandType.InlineSig:
                    tokens.Add(MetadataTokens.EntityHandle(il.ReadInt32()));
                    break;
                default: // InlineI, InlineBrTarget, InlineString, ShortInlineR: four bytes, no type
                    il.Offset += 4;
                    break;
            }
        }

        return tokens;
    }

    /// <summary>Decodes signatures into the set of this assembly's type definitions that they name.</summary>
    private sealed class TypeCollector : ISignatureTypeProvider<ImmutableArray<TypeDefinitionHandle>, object?>
    {
        private static readonly ImmutableArray<TypeDefinitionHandle> s_none = [];

        public ImmutableArray<TypeDefinitionHandle> FromEntity(MetadataReader md, EntityHandle entity)
        {
            switch (entity.Kind)
            {
                case HandleKind.TypeDefinition:
                    return [(TypeDefinitionHandle)entity];
                case HandleKind.TypeSpecification:
                    return md.GetTypeSpecification((TypeSpecificationHandle)entity).DecodeSignature(this, null);
                case HandleKind.FieldDefinition:
                {
                    FieldDefinition field = md.GetFieldDefinition((FieldDefinitionHandle)entity);
                    return [field.GetDeclaringType(), .. field.DecodeSignature(this, null)];
                }

                case HandleKind.MethodDefinition:
                {
                    MethodDefinition method = md.GetMethodDefinition((MethodDefinitionHandle)entity);
                    return [method.GetDeclaringType(), .. Flatten(method.DecodeSignature(this, null))];
                }

                case HandleKind.MemberReference:
                {
                    MemberReference member = md.GetMemberReference((MemberReferenceHandle)entity);
                    ImmutableArray<TypeDefinitionHandle> parent = FromEntity(md, member.Parent);
                    return member.GetKind() == MemberReferenceKind.Method
                        ? [.. parent, .. Flatten(member.DecodeMethodSignature(this, null))]
                        : [.. parent, .. member.DecodeFieldSignature(this, null)];
                }

                case HandleKind.MethodSpecification:
                {
                    MethodSpecification spec = md.GetMethodSpecification((MethodSpecificationHandle)entity);
                    return [.. FromEntity(md, spec.Method), .. spec.DecodeSignature(this, null).SelectMany(t => t)];
                }

                case HandleKind.StandaloneSignature:
                {
                    StandaloneSignature signature = md.GetStandaloneSignature((StandaloneSignatureHandle)entity);
                    return signature.GetKind() == StandaloneSignatureKind.Method
                        ? Flatten(signature.DecodeMethodSignature(this, null))
                        : [.. signature.DecodeLocalSignature(this, null).SelectMany(t => t)];
                }

                default: // type references and members of other assemblies, module references
                    return s_none;
            }
        }

        private static ImmutableArray<TypeDefinitionHandle> Flatten(MethodSignature<ImmutableArray<TypeDefinitionHandle>> signature) =>
            [.. signature.ReturnType, .. signature.ParameterTypes.SelectMany(t => t)];

        public ImmutableArray<TypeDefinitionHandle> GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => [handle];

        public ImmutableArray<TypeDefinitionHandle> GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => s_none;

        public ImmutableArray<TypeDefinitionHandle> GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) =>
            reader.GetTypeSpecification(handle).DecodeSignature(this, genericContext);

        public ImmutableArray<TypeDefinitionHandle> GetGenericInstantiation(ImmutableArray<TypeDefinitionHandle> genericType, ImmutableArray<ImmutableArray<TypeDefinitionHandle>> typeArguments) =>
            [.. genericType, .. typeArguments.SelectMany(t => t)];

        public ImmutableArray<TypeDefinitionHandle> GetFunctionPointerType(MethodSignature<ImmutableArray<TypeDefinitionHandle>> signature) => Flatten(signature);

        public ImmutableArray<TypeDefinitionHandle> GetModifiedType(ImmutableArray<TypeDefinitionHandle> modifier, ImmutableArray<TypeDefinitionHandle> unmodifiedType, bool isRequired) =>
            [.. modifier, .. unmodifiedType];

        public ImmutableArray<TypeDefinitionHandle> GetArrayType(ImmutableArray<TypeDefinitionHandle> elementType, ArrayShape shape) => elementType;

        public ImmutableArray<TypeDefinitionHandle> GetSZArrayType(ImmutableArray<TypeDefinitionHandle> elementType) => elementType;

        public ImmutableArray<TypeDefinitionHandle> GetByReferenceType(ImmutableArray<TypeDefinitionHandle> elementType) => elementType;

        public ImmutableArray<TypeDefinitionHandle> GetPointerType(ImmutableArray<TypeDefinitionHandle> elementType) => elementType;

        public ImmutableArray<TypeDefinitionHandle> GetPinnedType(ImmutableArray<TypeDefinitionHandle> elementType) => elementType;

        public ImmutableArray<TypeDefinitionHandle> GetPrimitiveType(PrimitiveTypeCode typeCode) => s_none;

        public ImmutableArray<TypeDefinitionHandle> GetGenericMethodParameter(object? genericContext, int index) => s_none;

        public ImmutableArray<TypeDefinitionHandle> GetGenericTypeParameter(object? genericContext, int index) => s_none;
    }
}
