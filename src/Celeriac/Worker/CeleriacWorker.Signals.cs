namespace Celeriac.Worker;

// The app's worker signals carry the worker as an IWorkerInfo, because App sits below Worker and may not name it.
public sealed partial class CeleriacWorker : IWorkerInfo;
