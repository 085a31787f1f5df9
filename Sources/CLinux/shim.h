// Linux interfaces the Glibc module leaves out: signalfd, which lets a FastCGI worker wait on
// its listening socket and its stop signals in one poll, without a signal handler.
#include <sys/signalfd.h>
