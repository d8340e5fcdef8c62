/*
 * The osv base's readiness helper, /.unikfile/ready PORT...: OSv runs it
 * beside the app (OSv's command line "/.unikfile/ready 8080 &! APP ...").
 * It connects to each port on 127.0.0.1 inside the guest until the app
 * accepts, then prints the ready line the host reads from the console.
 * When the app ends first, OSv asks this helper to stop (through
 * osv_current_app_on_termination_request, looked up at run time: it is
 * OSv's own C API), so that OSv can power off.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile int stop;

static void on_stop(void) { stop = 1; }

int main(int argc, char **argv) {
	void (*on_termination)(void (*)(void)) = (void (*)(void (*)(void)))dlsym(RTLD_DEFAULT, "osv_current_app_on_termination_request");
	if (on_termination)
		on_termination(on_stop);
	for (int i = 1; i < argc && !stop; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[i])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		while (!stop) {
			int s = socket(AF_INET, SOCK_STREAM, 0);
			int ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0;
			if (s >= 0)
				close(s);
			if (ok)
				break;
			usleep(2000);
		}
	}
	if (!stop) {
		printf("unikfile-osv: ready\n");
		fflush(stdout);
	}
	return 0;
}
