/* A tiny HTTP server in C (POSIX sockets only) for Rumprun: answers every
 * request with $GREETING and the argv it was started with. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
	int port = argc > 1 ? atoi(argv[1]) : 8080;
	const char *greeting = getenv("GREETING") ? getenv("GREETING") : "hello from C";
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
	if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 16) < 0) {
		perror("listen");
		return 1;
	}
	printf("serving on :%d\n", port);
	fflush(stdout);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0)
			continue;
		char buf[4096];
		if (read(c, buf, sizeof buf) > 0) {
			char body[1024];
			int len = snprintf(body, sizeof body, "%s (argv[0] %s, %d args)\n", greeting, argv[0], argc - 1);
			char resp[1280];
			int n = snprintf(resp, sizeof resp,
			                 "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			                 len, body);
			if (write(c, resp, n) < 0)
				perror("write");
		}
		close(c);
	}
}
