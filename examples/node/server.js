// A tiny HTTP server in Node.js (the standard library only).
const http = require("http");

const port = Number(process.argv[2] || 8080);
const greeting = process.env.GREETING || "hello from Node.js";

http
  .createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end(greeting + "\n");
  })
  .listen(port, () => console.log(`serving on :${port}`));
