// A small HTTP server in C++ for Rumprun: a thread per connection, the
// answer built with the standard library (Rumprun's libc++).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

int main(int argc, char **argv) {
	int port = argc > 1 ? std::atoi(argv[1]) : 8080;
	const char *g = std::getenv("GREETING");
	const std::string greeting = g ? g : "hello from C++";
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	sockaddr_in addr{};
	addr.sin_family = AF_INET;
	addr.sin_port = htons(port);
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(s, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0 || listen(s, 16) < 0) {
		std::perror("listen");
		return 1;
	}
	std::cout << "serving on :" << port << std::endl;
	std::atomic<long> served{0};
	for (;;) {
		int c = accept(s, nullptr, nullptr);
		if (c < 0)
			continue;
		std::thread([c, &greeting, &served] {
			char buf[4096];
			if (read(c, buf, sizeof buf) > 0) {
				std::ostringstream body;
				body << greeting << " (request " << ++served << ")\n";
				std::ostringstream resp;
				resp << "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " << body.str().size()
				     << "\r\nConnection: close\r\n\r\n"
				     << body.str();
				const std::string out = resp.str();
				if (write(c, out.data(), out.size()) < 0)
					std::perror("write");
			}
			close(c);
		}).detach();
	}
}
