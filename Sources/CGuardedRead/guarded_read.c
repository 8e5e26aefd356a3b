#include "guarded_read.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

// The handler that was installed before ours, which gets every SIGBUS not raised by a guarded
// read.
static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int installed;
// Non-null only while this thread reads in `pmp_guarded_gather`.
static _Thread_local sigjmp_buf *volatile active;

static void on_sigbus(int signal, siginfo_t *info, void *context) {
    sigjmp_buf *jump = active;
    if (jump) {
        active = 0;
        siglongjmp(*jump, 1);
    }
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(signal, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(signal);
    } else {
        // The default action (a SIGBUS from a fault cannot be ignored): restore it and return,
        // so the faulting access runs again and ends the process as it would have.
        struct sigaction fallback;
        memset(&fallback, 0, sizeof fallback);
        fallback.sa_handler = SIG_DFL;
        sigaction(SIGBUS, &fallback, 0);
    }
}

static void install(void) {
    struct sigaction ours;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = on_sigbus;
    ours.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&ours.sa_mask);
    installed = sigaction(SIGBUS, &ours, &previous) == 0;
}

static int guard_in_place(void) {
    pthread_once(&install_once, install);
    if (!installed) return 0;
    struct sigaction current;
    if (sigaction(SIGBUS, 0, &current) != 0) return 0;
    return (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_sigbus;
}

int pmp_guarded_gather(const unsigned char *base, const uint32_t *offsets, long count, double *values,
                       double *stamps) {
    if (!guard_in_place()) return -2;
    sigjmp_buf jump;
    if (sigsetjmp(jump, 0)) {
        // The signal mask is not saved above (that is a system call on every read). SA_NODEFER
        // keeps SIGBUS unblocked in our handler, but a runtime that wraps handlers (the thread
        // sanitizer's) may block it: unblock it, or the next SIGBUS would end the process.
        sigset_t bus;
        sigemptyset(&bus);
        sigaddset(&bus, SIGBUS);
        pthread_sigmask(SIG_UNBLOCK, &bus, 0);
        return -1;
    }
    active = &jump;
    // The reads below stay after the store above and before the one after them.
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    for (long i = 0; i < count; i++) {
        memcpy(&values[i], base + offsets[i], 8);
        memcpy(&stamps[i], base + offsets[i] + 8, 8);
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    active = 0;
    return 0;
}
