/**
 * The reference for `events-10k`: a bare `ws` server doing only what the
 * fan-out must do (answer the subscribe, and on every registration POST send
 * one text frame encoded once to every subscriber), with no registry, filters
 * or authorisation. Prints {"port"} once listening.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

process.stdin.on('end', () => process.exit(0)).resume();
const sockets = new Set<WebSocket>();
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const { nodeName, serviceName } = JSON.parse(Buffer.concat(chunks).toString()) as { nodeName: string; serviceName: string };
    res.end('{}');
    // About the size of Maxine's push (event, instance JSON, revision).
    const push = Buffer.from(
      JSON.stringify({ event: 'service_registered', data: { type: 'service_registered', serviceName, nodeName, padding: 'x'.repeat(600) }, timestamp: Date.now(), revision: 1 }),
    );
    for (const socket of sockets) socket.send(push, { binary: false });
  });
});
const wss = new WebSocketServer({ server, path: '/api/maxine/events/ws' });
wss.on('connection', (socket) => {
  socket.once('message', () => {
    socket.send('{"type":"subscribed"}');
    sockets.add(socket);
  });
  socket.on('close', () => sockets.delete(socket));
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }));
});
