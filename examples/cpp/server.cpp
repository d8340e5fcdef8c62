// A tiny HTTP server in C++ (the standard library and POSIX sockets),
// built with CMake.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

int main(int argc, char **argv) {
	int port = argc > 1 ? std::atoi(argv[1]) : 8080;
	std::string greeting = std::getenv("GREETING") ? std::getenv("GREETING") : "hello from C++";
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
	for (;;) {
		int c = accept(s, nullptr, nullptr);
		if (c < 0) continue;
		char buf[4096];
		if (read(c, buf, sizeof buf) > 0) {
			std::string body = greeting + "\n";
			std::ostringstream resp;
			resp << "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " << body.size()
			     << "\r\nConnection: close\r\n\r\n" << body;
			std::string r = resp.str();
			if (write(c, r.data(), r.size()) < 0) std::perror("write");
		}
		close(c);
	}
}
