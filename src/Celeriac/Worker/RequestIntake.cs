using Celeriac.Diagnostics;
using Celeriac.Protocol;
using Celeriac.Transport;
using Microsoft.Extensions.Logging;

namespace Celeriac.Worker;

/// <summary>
/// Decodes what the consumer took. Bad input (an unreadable message, a malformed task message, an unknown task) is
/// logged once, failed where its id is known (as Celery stores <c>ContentDisallowed</c> and <c>NotRegistered</c>), and
/// acked: it never reaches a pool and never stops the worker.
/// </summary>
internal sealed class RequestIntake(CeleriacApp app, object sender, StoreResultStep store, ResultDocuments documents, ILogger logger, Func<Events.EventDispatcher?> taskEvents)
{
    /// <summary>Decodes the request's message in place; false when it was bad input and has been settled.</summary>
    public async ValueTask<bool> DecodeAsync(WorkerRequest request, CancellationToken abort)
    {
        Delivery delivery = request.Delivery;
        if (delivery.Message is not { } transportMessage)
        {
            Log.InvalidMessage(logger, delivery.Queue, delivery.DecodeError ?? "unreadable message", "");
            await delivery.AckAsync(abort).ConfigureAwait(false);
            return false;
        }

        if (app.Signer is { } signer)
        {
            if (!signer.TryVerify(transportMessage, out TransportMessage? verified, out string? refusal))
            {
                await RefuseAsync(delivery, transportMessage, refusal!, abort).ConfigureAwait(false);
                return false;
            }

            transportMessage = verified!;
        }

        if (!TaskMessage.TryDecode(transportMessage, out TaskMessage? message, out string? id, out string? name, out string? error))
        {
            Log.InvalidMessage(logger, delivery.Queue, error!, id is null ? "" : $" (task {name}[{id}])");
            app.Signals.OnTaskRejected(sender, new TaskSignalEventArgs { TaskId = id ?? "", TaskName = name ?? "", Queue = delivery.Queue, Message = transportMessage, Reason = error });
            if (id is not null && IsPlausibleId(id))
            {
                await store.StoreAsync(documents.Failure(id, new ExceptionInfo("ContentDisallowed", error!, "kombu.exceptions"), transportMessage.ReplyTo), abort).ConfigureAwait(false);
            }

            await delivery.AckAsync(abort).ConfigureAwait(false);
            return false;
        }

        if (!app.Tasks.TryGet(message!.Headers.Task, out CeleriacTask? task) || task.Invoker is null)
        {
            Log.UnknownTask(logger, message.Headers.Task, message.Headers.Id);
            app.Signals.OnTaskUnknown(sender, new TaskSignalEventArgs { TaskId = message.Headers.Id, TaskName = message.Headers.Task, Queue = delivery.Queue, Message = transportMessage });
            await store.StoreAsync(documents.Failure(message.Headers.Id, new ExceptionInfo("NotRegistered", message.Headers.Task, "celery.exceptions"), message.Transport.ReplyTo), abort).ConfigureAwait(false);
            if (taskEvents() is { } events)
            {
                // As Celery's consumer: a task-failed without a task-received, so monitors see the id fail.
                Events.TaskEvents.Failed(events, "task-failed", message.Headers.Id, $"NotRegistered({PythonRepr.OfString(message.Headers.Task)})", null);
            }

            await delivery.AckAsync(abort).ConfigureAwait(false);
            message.Dispose();
            return false;
        }

        if (logger.IsEnabled(LogLevel.Information))
        {
            Log.TaskReceived(logger, message.Headers.Task, message.Headers.Id);
        }

        request.Message = message;
        request.Task = task;
        return true;
    }

    /// <summary>
    /// A message that fails verification is dropped as Celery drops it (an unsigned one rejected as ContentDisallowed, a
    /// bad signature acked as a DecodeError), with no result stored: its id is the sender's word, which is not trusted.
    /// </summary>
    private async ValueTask RefuseAsync(Delivery delivery, TransportMessage message, string reason, CancellationToken abort)
    {
        string? id = message.Headers.TryGetValue("id", out object? idv) ? idv as string : null;
        string? name = message.Headers.TryGetValue("task", out object? namev) ? namev as string : null;
        Log.MessageRefused(logger, delivery.Queue, reason, id is null ? "" : $" (task {name}[{id}])");
        app.Signals.OnTaskRejected(sender, new TaskSignalEventArgs { TaskId = id ?? "", TaskName = name ?? "", Queue = delivery.Queue, Message = message, Reason = reason });
        if (MessageSigner.IsSigned(message))
        {
            await delivery.AckAsync(abort).ConfigureAwait(false);
        }
        else
        {
            await delivery.RejectAsync(requeue: false, abort).ConfigureAwait(false);
        }
    }

    private static bool IsPlausibleId(string id) => id.Length is > 0 and <= 255;
}
