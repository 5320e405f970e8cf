// Interop check: ws (Debian node-ws) as the client against Switchboard's negotiation and codec.
// Run by scripts/deflate-interop/run.sh; arguments: our response value, our compressed "Hello" and chat
// message (hex), the chat text.
const PerMessageDeflate = require('/usr/share/nodejs/ws/lib/permessage-deflate.js');
const { parse } = require('/usr/share/nodejs/ws/lib/extension.js');
const [ourResponse, ourHelloHex, ourChatHex, chatText] = process.argv.slice(2);
const client = new PerMessageDeflate({}, false, 1 << 20);   // browser-like client: offers client_max_window_bits
console.log('ws offer:', JSON.stringify(client.offer()));
const params = client.accept(parse(ourResponse)['permessage-deflate']);
console.log('ws accepted our response:', JSON.stringify(params));
let pending = 3;
const done = () => { if (--pending === 0) process.exit(0); };
client.decompress(Buffer.from(ourHelloHex, 'hex'), true, (err, out) => {
  if (err) throw err;
  console.log('ws inflated our Hello:', JSON.stringify(out.toString()));
  done();
});
client.decompress(Buffer.from(ourChatHex, 'hex'), true, (err, out) => {
  if (err) throw err;
  console.log('ws inflated our chat message equal:', out.toString() === chatText, out.length, 'B');
  done();
});
client.compress(Buffer.from(chatText), true, (err, data) => {
  if (err) throw err;
  console.log('WSCOMPRESSED', data.toString('hex'));
  done();
});
