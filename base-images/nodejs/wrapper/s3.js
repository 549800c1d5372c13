// A minimal S3 client: PUT and GET of one object, path-style (endpoint/bucket/key), signed
// with AWS Signature Version 4 (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html).
// Signing, in short:
//   canonical request = METHOD \n /uri-encoded/path \n query \n name:value\n per signed header
//                       (lowercase, sorted) \n signed;header;names \n hex sha256 of the body
//   string to sign    = AWS4-HMAC-SHA256 \n 20130524T000000Z \n <date>/<region>/s3/aws4_request
//                       \n hex sha256 of the canonical request
//   signing key       = HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request"
//   Authorization     = AWS4-HMAC-SHA256 Credential=<key id>/<scope>, SignedHeaders=..., Signature=<hex>
'use strict';

const crypto = require('crypto');
const http = require('http');
const https = require('https');

const REQUEST_TIMEOUT_MS = 120000; // idle socket time before a request is given up

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ (and '/' in paths). */
function uriEncode(text, keepSlash) {
  return Buffer.from(text, 'utf8').reduce((out, b) => {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) return out + c;
    return `${out}%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }, '');
}

/** "20130524T000000Z" for a Date. */
const amzDate = (date) => date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

/**
 * Sign a request: returns the Authorization header's value (and the pieces, for tests).
 * headers: the headers to sign (any case); must include host, x-amz-date and
 * x-amz-content-sha256. path: already URI-encoded. query: the canonical query string.
 */
function sign({ method, path, query = '', headers, region, service = 's3', accessKeyId, secretAccessKey }) {
  const lower = Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v).trim().replace(/\s+/g, ' ')]);
  lower.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const signedHeaders = lower.map(([k]) => k).join(';');
  const date = lower.find(([k]) => k === 'x-amz-date');
  const payloadHash = lower.find(([k]) => k === 'x-amz-content-sha256');
  if (!date || !payloadHash) throw new Error('SigV4: x-amz-date and x-amz-content-sha256 must be signed');
  const canonicalRequest = [method, path, query, ...lower.map(([k, v]) => `${k}:${v}`), '', signedHeaders, payloadHash[1]].join('\n');
  const day = date[1].slice(0, 8);
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date[1], scope, sha256(canonicalRequest)].join('\n');
  const key = [day, region, service, 'aws4_request'].reduce(hmac, `AWS4${secretAccessKey}`);
  const signature = crypto.createHmac('sha256', key).update(stringToSign).digest('hex');
  const authorization = `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { authorization, canonicalRequest, stringToSign, signature };
}

class S3Client {
  /** endpoint: http(s)://host[:port][/base]; region defaults to us-east-1. */
  constructor({ endpoint, accessKeyId, secretAccessKey, region = 'us-east-1' }) {
    this.endpoint = new URL(endpoint);
    this.credentials = { accessKeyId, secretAccessKey };
    this.region = region;
  }

  /** Store body (a Buffer) at bucket/key with user metadata {name: value} (x-amz-meta-name). */
  async put(bucket, key, body, metadata = {}) {
    const headers = { 'content-type': 'application/octet-stream' };
    for (const [name, value] of Object.entries(metadata)) headers[`x-amz-meta-${name.toLowerCase()}`] = value;
    await this._request('PUT', bucket, key, headers, body);
  }

  /** {body: Buffer, metadata: {name: value}} of bucket/key. */
  async get(bucket, key) {
    const res = await this._request('GET', bucket, key, {}, Buffer.alloc(0));
    const metadata = {};
    for (const [name, value] of Object.entries(res.headers)) {
      if (name.startsWith('x-amz-meta-')) metadata[name.slice('x-amz-meta-'.length)] = value;
    }
    return { body: res.body, metadata };
  }

  _request(method, bucket, key, extra, body) {
    const base = this.endpoint.pathname.replace(/\/+$/, '');
    const path = `${base}/${uriEncode(bucket, false)}/${uriEncode(key, true)}`;
    const headers = {
      host: this.endpoint.host,
      'x-amz-date': amzDate(new Date()),
      'x-amz-content-sha256': sha256(body),
      ...extra,
    };
    headers.authorization = sign({ method, path, headers, region: this.region, ...this.credentials }).authorization;
    headers['content-length'] = String(body.length);
    const transport = this.endpoint.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request({
        method, path, headers,
        hostname: this.endpoint.hostname.replace(/^\[|\]$/g, ''),
        port: this.endpoint.port || undefined,
        timeout: REQUEST_TIMEOUT_MS,
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const data = Buffer.concat(chunks);
          if (res.statusCode >= 200 && res.statusCode < 300) return resolve({ headers: res.headers, body: data });
          return reject(new Error(`S3 ${method} ${res.statusCode}: ${errorText(data) || res.statusMessage}`));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`S3 ${method}: no answer from ${this.endpoint.origin} within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', (err) => reject(err.message.startsWith('S3 ') ? err
        : new Error(`S3 ${method}: cannot reach ${this.endpoint.origin}: ${err.code || err.message}`)));
      req.end(body);
    });
  }
}

/** "NoSuchKey: The specified key does not exist." from S3's XML error document. */
function errorText(xml) {
  const text = xml.toString('utf8');
  const pick = (tag) => (new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(text) || [])[1];
  const code = pick('Code');
  const message = pick('Message');
  return [code, message].filter(Boolean).join(': ') || text.trim().slice(0, 200);
}

module.exports = { S3Client, sign, uriEncode, amzDate };
