// An HTTP service for the includeos base: it takes its address by DHCP
// (which QEMU's user network, libvirt's networks and clouds answer), falls
// back to QEMU's user-network address, and answers every request.
#include <os>
#include <service>
#include <net/interfaces>
#include <net/http/server.hpp>
#include <cstdio>
#include <memory>

static std::unique_ptr<http::Server> server;
static int served = 0;

static void serve(net::Inet& inet) {
  server = std::make_unique<http::Server>(inet.tcp());
  server->on_request([](http::Request_ptr req, http::Response_writer_ptr w) {
    ++served;
    printf("httpd: %d %s\n", served, std::string(req->uri().to_string()).c_str());
    w->header().set_field(http::header::Content_Type, "text/plain");
    w->write("hello from C++ on IncludeOS\n");
  });
  server->listen(80);
  printf("httpd: listening on %s:80\n", inet.ip_addr().to_string().c_str());
}

void Service::start(const std::string&) {}

void Service::ready() {
  static auto& inet = net::Interfaces::get(0);
  inet.negotiate_dhcp(5.0, [](bool timed_out) {
    if (timed_out) {
      printf("httpd: no DHCP answer, using QEMU's user-network address\n");
      inet.network_config({10, 0, 2, 15}, {255, 255, 255, 0}, {10, 0, 2, 2}, {10, 0, 2, 3});
    }
    serve(inet);
  });
}
