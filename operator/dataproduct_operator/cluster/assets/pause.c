/*
 * The pause image's only program: the process that holds a pod's namespaces.
 *
 * It sleeps until SIGINT or SIGTERM (then exits 0), and as PID 1 of a pod sharing its process
 * namespace it reaps every child that exits, so no zombie outlives its container. Built by
 * `dpo images build pause` with `gcc -static -Os`: the image holds nothing else.
 */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signal_number) {
    (void)signal_number;
    _exit(0);
}

static void reap(int signal_number) {
    (void)signal_number;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

static int handle(int signal_number, void (*handler)(int), int flags) {
    struct sigaction action = {0};
    action.sa_handler = handler;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    return sigaction(signal_number, &action, NULL);
}

int main(void) {
    if (handle(SIGINT, stop, 0) < 0 || handle(SIGTERM, stop, 0) < 0 ||
        handle(SIGCHLD, reap, SA_NOCLDSTOP | SA_RESTART) < 0) {
        return 1;
    }
    for (;;) {
        pause();
    }
}
