//! A tiny HTTP server in Rust (the standard library only).
use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8080".into());
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "hello from Rust".into());
    let listener = TcpListener::bind(format!("0.0.0.0:{port}")).expect("listen");
    println!("serving on :{port}");
    for stream in listener.incoming() {
        let mut s = match stream {
            Ok(s) => s,
            Err(_) => continue,
        };
        let mut buf = [0u8; 4096];
        if s.read(&mut buf).unwrap_or(0) == 0 {
            continue;
        }
        let body = format!("{greeting}\n");
        let resp = format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(resp.as_bytes());
    }
}
