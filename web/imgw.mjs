// SPDX-License-Identifier: MIT
// The imgw client protocol for JavaScript: the 12-byte frame header of
// docs/protocol.md and a hand-written protobuf encoder and decoder for the
// messages a chat client uses (field numbers from proto/imgw.proto). The
// browser page and the Node tests both import this module.

export const OP = {
	LOGIN: 1, LOGIN_RESULT: 2, HEARTBEAT: 3, HEARTBEAT_ACK: 4, SEND: 5,
	SEND_RESULT: 6, PUSH: 7, SYNC: 8, SYNC_RESULT: 9, KICK: 10, ERROR: 11,
};

export const FRAME_HEADER_LEN = 12;

const utf8enc = new TextEncoder();
const utf8dec = new TextDecoder();

function pushVarint(out, value) {
	let v = BigInt(value);
	while (v >= 0x80n) {
		out.push(Number(v & 0x7fn) | 0x80);
		v >>= 7n;
	}
	out.push(Number(v));
}

function pushKey(out, field, wireType) {
	pushVarint(out, (field << 3) | wireType);
}

function pushBytes(out, field, bytes) {
	pushKey(out, field, 2);
	pushVarint(out, bytes.length);
	for (const b of bytes)
		out.push(b);
}

// Encodes a message from [field, kind, value] rows; kind is 'uint' (varint,
// skipped when 0, as proto3 does), 'string' (skipped when empty) or 'bytes'.
function encodeFields(rows) {
	const out = [];

	for (const [field, kind, value] of rows) {
		if (value === undefined || value === null)
			continue;
		if (kind === 'uint') {
			if (BigInt(value) === 0n)
				continue;
			pushKey(out, field, 0);
			pushVarint(out, value);
		} else if (kind === 'string') {
			if (value === '')
				continue;
			pushBytes(out, field, utf8enc.encode(value));
		} else {
			pushBytes(out, field, value);
		}
	}
	return Uint8Array.from(out);
}

// Reads the fields of a protobuf message into a map of field number to a
// list of raw values (BigInt for varints, Uint8Array for length-delimited).
function readFields(buf) {
	const fields = new Map();
	let pos = 0;

	const varint = () => {
		let result = 0n, shift = 0n;
		for (;;) {
			if (pos >= buf.length)
				throw new Error('truncated varint');
			const b = buf[pos++];
			result |= BigInt(b & 0x7f) << shift;
			if (!(b & 0x80))
				return result;
			shift += 7n;
		}
	};
	while (pos < buf.length) {
		const key = Number(varint());
		const field = key >> 3, wireType = key & 7;
		let value;

		if (wireType === 0) {
			value = varint();
		} else if (wireType === 2) {
			const len = Number(varint());
			if (pos + len > buf.length)
				throw new Error('truncated field');
			value = buf.subarray(pos, pos + len);
			pos += len;
		} else if (wireType === 1 || wireType === 5) {
			pos += wireType === 1 ? 8 : 4;
			continue;
		} else {
			throw new Error(`unsupported wire type ${wireType}`);
		}
		if (!fields.has(field))
			fields.set(field, []);
		fields.get(field).push(value);
	}
	return fields;
}

const num = (f, n) => (f.has(n) ? Number(f.get(n).at(-1)) : 0);
const str = (f, n) => (f.has(n) ? utf8dec.decode(f.get(n).at(-1)) : '');
const bytes = (f, n) => (f.has(n) ? f.get(n).at(-1) : new Uint8Array());

export function decodePush(buf) {
	const f = readFields(buf);
	return {
		sessionId: num(f, 1), seq: num(f, 2), sender: str(f, 3),
		timeMs: num(f, 4), payload: bytes(f, 5), type: num(f, 6),
		senderDevice: str(f, 7), clientMsgId: str(f, 8),
	};
}

function decodeSessionInfo(buf) {
	const f = readFields(buf);
	return {
		sessionId: num(f, 1), kind: num(f, 2), name: str(f, 3),
		lastSeq: num(f, 4), type: num(f, 5),
		members: (f.get(6) || []).map((b) => utf8dec.decode(b)),
	};
}

const decoders = {
	[OP.LOGIN_RESULT]: (f) => ({
		code: num(f, 1), reason: str(f, 2), connId: num(f, 3),
		sessions: (f.get(4) || []).map(decodeSessionInfo),
		serverTimeMs: num(f, 5),
	}),
	[OP.SEND_RESULT]: (f) => ({
		code: num(f, 1), reason: str(f, 2), sessionId: num(f, 3),
		seq: num(f, 4), timeMs: num(f, 5), clientMsgId: str(f, 6),
	}),
	[OP.SYNC_RESULT]: (f) => ({
		code: num(f, 1), reason: str(f, 2), sessionId: num(f, 3),
		messages: (f.get(4) || []).map(decodePush), lastSeq: num(f, 5),
		more: num(f, 6) !== 0,
	}),
	[OP.KICK]: (f) => ({ reason: str(f, 1) }),
	[OP.ERROR]: (f) => ({ code: num(f, 1), text: str(f, 2) }),
	[OP.HEARTBEAT_ACK]: () => ({}),
};

// Returns one frame: the 12-byte header and body.
export function encodeFrame(op, requestId, body = new Uint8Array()) {
	const frame = new Uint8Array(FRAME_HEADER_LEN + body.length);
	const view = new DataView(frame.buffer);

	view.setUint32(0, body.length);
	view.setUint8(4, 1);
	view.setUint8(5, 0);
	view.setUint16(6, op);
	view.setUint32(8, requestId);
	frame.set(body, FRAME_HEADER_LEN);
	return frame;
}

export function encodeLogin({ token, userId, deviceId, platform }) {
	return encodeFields([[1, 'string', token], [2, 'string', userId],
			     [3, 'string', deviceId], [4, 'string', platform]]);
}

export function encodeSend({ sessionId, toUser, clientMsgId, payload }) {
	const data = typeof payload === 'string' ?
		utf8enc.encode(payload) : payload;
	return encodeFields([[1, 'uint', sessionId], [2, 'string', toUser],
			     [3, 'string', clientMsgId], [4, 'bytes', data]]);
}

export function encodeSync({ sessionId, fromSeq, limit }) {
	return encodeFields([[1, 'uint', sessionId], [2, 'uint', fromSeq],
			     [3, 'uint', limit]]);
}

// Parses one whole frame; returns { op, requestId, msg } where msg is the
// decoded body for the ops above and the raw body otherwise.
export function decodeFrame(data) {
	const buf = data instanceof Uint8Array ? data : new Uint8Array(data);
	const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);

	if (buf.length < FRAME_HEADER_LEN)
		throw new Error(`frame of ${buf.length} bytes is shorter than its header`);
	const bodyLen = view.getUint32(0);
	if (bodyLen !== buf.length - FRAME_HEADER_LEN)
		throw new Error(`frame body_len ${bodyLen} does not match ${buf.length - FRAME_HEADER_LEN} bytes`);
	const op = view.getUint16(6), requestId = view.getUint32(8);
	const body = buf.subarray(FRAME_HEADER_LEN);
	if (op === OP.PUSH)
		return { op, requestId, msg: decodePush(body) };
	const decode = decoders[op];
	return { op, requestId, msg: decode ? decode(readFields(body)) : body };
}

export function payloadText(payload) {
	return utf8dec.decode(payload);
}
