using System.Runtime.CompilerServices;
using System.Text.Json;
using Celeriac.Beat;

namespace Celeriac.Beat
{
    /// <summary>
    /// The periodic entries an app defines in code (<c>app.Beat.Add(...)</c>); every beat of the app sends them, with those
    /// of <see cref="CeleriacOptions.BeatSchedule"/> and those added to the store.
    /// </summary>
    public sealed class BeatScheduleBuilder
    {
        private static readonly ConditionalWeakTable<CeleriacApp, BeatScheduleBuilder> s_builders = [];
        private readonly List<BeatEntry> _entries = [];

        private BeatScheduleBuilder()
        {
        }

        /// <summary>The entries added so far.</summary>
        public IReadOnlyList<BeatEntry> Entries
        {
            get
            {
                lock (_entries)
                {
                    return [.. _entries];
                }
            }
        }

        /// <summary>The app's builder.</summary>
        public static BeatScheduleBuilder For(CeleriacApp app)
        {
            ArgumentNullException.ThrowIfNull(app);
            return s_builders.GetValue(app, static _ => new BeatScheduleBuilder());
        }

        /// <summary>Adds an entry (replacing one of the same name).</summary>
        public BeatScheduleBuilder Add(BeatEntry entry)
        {
            ArgumentNullException.ThrowIfNull(entry);
            lock (_entries)
            {
                _entries.RemoveAll(e => e.Name == entry.Name);
                _entries.Add(entry);
            }

            return this;
        }

        /// <summary>
        /// Adds <paramref name="task"/> on <paramref name="schedule"/>: a five-field crontab (<c>"0 3 * * *"</c>) or a
        /// number of seconds, with positional <paramref name="args"/>.
        /// </summary>
        /// <exception cref="FormatException">A bad schedule, naming the entry.</exception>
        public BeatScheduleBuilder Add(string name, string task, string schedule, params object?[] args)
        {
            try
            {
                return Add(name, task, BeatSchedule.Parse(schedule), args);
            }
            catch (FormatException ex)
            {
                throw new FormatException($"Beat entry '{name}': {ex.Message}", ex);
            }
        }

        /// <summary>Adds <paramref name="task"/> every <paramref name="every"/>, with positional <paramref name="args"/>.</summary>
        public BeatScheduleBuilder Add(string name, string task, TimeSpan every, params object?[] args) =>
            Add(name, task, new IntervalSchedule(every), args);

        /// <summary>Adds <paramref name="task"/> on <paramref name="schedule"/>, with positional <paramref name="args"/>.</summary>
        public BeatScheduleBuilder Add(string name, string task, BeatSchedule schedule, params object?[] args)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(name);
            ArgumentException.ThrowIfNullOrWhiteSpace(task);
            ArgumentNullException.ThrowIfNull(schedule);
            return Add(new BeatEntry
            {
                Name = name,
                Task = task,
                Schedule = schedule,
                Args = JsonSerializer.SerializeToElement(args ?? [], Protocol.CeleryJson.Options),
            });
        }
    }
}

namespace Celeriac
{
    /// <summary>Beat from an app: <c>app.Beat.Add("cleanup", "tasks.cleanup", "0 3 * * *")</c>.</summary>
    public static class BeatExtensions
    {
        extension(CeleriacApp app)
        {
            /// <summary>The periodic entries this app defines in code.</summary>
            public BeatScheduleBuilder Beat => BeatScheduleBuilder.For(app);
        }
    }
}
