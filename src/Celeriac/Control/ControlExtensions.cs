using Celeriac.Control;

namespace Celeriac;

/// <summary>Remote control from an app: <c>app.Control.Inspect().ActiveAsync()</c>, <c>app.Control.PingAsync()</c>.</summary>
public static class ControlExtensions
{
    extension(CeleriacApp app)
    {
        /// <summary>Celery's <c>app.control</c>: commands to the workers over the broker's pidbox, and their replies.</summary>
        public ControlClient Control => ControlClient.For(app);
    }
}
