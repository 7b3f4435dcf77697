using System.IO.Compression;
using System.Xml.Linq;

namespace Celeriac.IntegrationTests.Packaging;

/// <summary>What a .nupkg (or .snupkg) holds: its files and the fields of its .nuspec that the tests check.</summary>
internal sealed record NuGetPackage(
    string Id,
    string Version,
    string? Description,
    string? License,
    string? Readme,
    string? RepositoryType,
    string? RepositoryCommit,
    string? PackageType,
    IReadOnlyDictionary<string, string> Dependencies,
    IReadOnlyList<string> Files)
{
    public static NuGetPackage Open(string path)
    {
        using ZipArchive zip = ZipFile.OpenRead(path);
        List<string> files = zip.Entries.Select(e => e.FullName).ToList();
        ZipArchiveEntry nuspec = zip.Entries.Single(e => !e.FullName.Contains('/', StringComparison.Ordinal) && e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
        XDocument doc;
        using (Stream stream = nuspec.Open())
        {
            doc = XDocument.Load(stream);
        }

        XElement metadata = doc.Root!.Elements().Single(e => e.Name.LocalName == "metadata");
        string? Field(string name) => metadata.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;
        XElement? repository = metadata.Elements().FirstOrDefault(e => e.Name.LocalName == "repository");
        var dependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency")
            .GroupBy(e => (string)e.Attribute("id")!)
            .ToDictionary(g => g.Key, g => (string)g.First().Attribute("version")!);
        string? packageType = metadata.Descendants().FirstOrDefault(e => e.Name.LocalName == "packageType")?.Attribute("name")?.Value;
        return new NuGetPackage(
            Field("id")!, Field("version")!, Field("description"), Field("license"), Field("readme"),
            (string?)repository?.Attribute("type"), (string?)repository?.Attribute("commit"), packageType, dependencies, files);
    }
}
