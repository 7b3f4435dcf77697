namespace Celeriac.BrowserTests;

public sealed class ChromiumTests
{
    [Fact]
    public void DebianChromiumIsInstalled() => Assert.True(File.Exists("/usr/bin/chromium"), "scripts/provision.sh installs Debian's chromium");
}
