// The shared storage of storage v3: where task outputs are written and inputs read, with
// HKube's variables (the server gives them to the workers it starts):
//   CLUSTER_NAME               outputs go to <CLUSTER_NAME>-hkube/<jobId>/<taskId>
//   DEFAULT_STORAGE            fs | s3
//   BASE_FS_ADAPTER_DIRECTORY  fs: the root; path p is the file <root>/p
//   S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3_REGION (default us-east-1)
//                              s3: a path's first segment is the bucket, the rest the key
//   STORAGE_ENCODING           msgpack (default) | json | bson
// Objects are HKube's format (header.js): on fs the header leads the file, on S3 it is the
// object's metadata `header`, as HKube's own wrappers write and read them.
'use strict';

const fs = require('fs');
const path = require('path');
const format = require('./header');
const { S3Client } = require('./s3');

const STORAGE_ENCODINGS = ['msgpack', 'json', 'bson'];

/** The storage settings for v3; throws naming the variable that is missing or wrong. */
function storageSettings(env) {
  const need = (name, why) => {
    if (!env[name]) throw new Error(`STORAGE_PROTOCOL=v3 needs ${name} (${why})`);
    return env[name];
  };
  const clusterName = need('CLUSTER_NAME', 'outputs are stored under <CLUSTER_NAME>-hkube/');
  const type = need('DEFAULT_STORAGE', 'fs or s3');
  const encoding = env.STORAGE_ENCODING || 'msgpack';
  if (!STORAGE_ENCODINGS.includes(encoding)) {
    throw new Error(`STORAGE_ENCODING=${encoding} is not supported: use ${STORAGE_ENCODINGS.join(', ')}`);
  }
  if (type === 'fs') {
    return { type, clusterName, encoding, root: need('BASE_FS_ADAPTER_DIRECTORY', 'the root folder of the fs storage') };
  }
  if (type === 's3') {
    const endpoint = need('S3_ENDPOINT_URL', 'the S3 server, http(s)://host:port');
    try { new URL(endpoint); } catch { throw new Error(`S3_ENDPOINT_URL=${endpoint} is not a URL`); }
    return {
      type, clusterName, encoding, endpoint,
      accessKeyId: need('AWS_ACCESS_KEY_ID', 'the S3 access key'),
      secretAccessKey: need('AWS_SECRET_ACCESS_KEY', 'the S3 secret key'),
      region: env.S3_REGION || 'us-east-1',
    };
  }
  throw new Error(`DEFAULT_STORAGE=${type} is not supported: use fs or s3`);
}

/** Refuse paths that could leave the storage ('..', empty segments). */
function segments(p) {
  const parts = String(p).split('/');
  if (!p || parts.some((s) => s === '' || s === '.' || s === '..')) throw new Error('not a storage path');
  return parts;
}

class FsBackend {
  constructor(root) { this.root = root; }

  async put(p, header, payload) {
    const file = path.join(this.root, ...segments(p));
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    // Written aside then renamed: a reader never sees half an object.
    const partial = `${file}.${process.pid}.partial`;
    const handle = await fs.promises.open(partial, 'w');
    try {
      await handle.writev([header, payload]);
    } finally {
      await handle.close();
    }
    await fs.promises.rename(partial, file);
  }

  async get(p) {
    const bytes = await fs.promises.readFile(path.join(this.root, ...segments(p)));
    return { bytes, header: null }; // the header, if any, leads the file
  }
}

class S3Backend {
  constructor(settings) { this.client = new S3Client(settings); }

  async put(p, header, payload) {
    const [bucket, ...key] = segments(p);
    await this.client.put(bucket, key.join('/'), payload, { header: format.headerToString(header) });
  }

  async get(p) {
    const [bucket, ...key] = segments(p);
    const { body, metadata } = await this.client.get(bucket, key.join('/'));
    return { bytes: body, header: metadata.header ? format.headerFromString(metadata.header) : null };
  }
}

class Storage {
  constructor(settings) {
    this.settings = settings;
    this.encoding = settings.encoding;
    this.backend = settings.type === 's3' ? new S3Backend(settings) : new FsBackend(settings.root);
  }

  /** HKube's path for a task's output. */
  outputPath(jobId, taskId) {
    return `${this.settings.clusterName}-hkube/${jobId}/${taskId}`;
  }

  /** Encode and store value at p; resolves with the payload's size (what `storing` reports). */
  async put(p, value) {
    let object;
    try {
      object = format.encodeObject(this.encoding, value);
    } catch (err) {
      throw new Error(`cannot encode the output for '${p}' (${this.encoding}): ${err.message}`);
    }
    try {
      await this.backend.put(p, object.header, object.payload);
    } catch (err) {
      throw new Error(`cannot store the output at '${p}' (${this._describe(err)})`);
    }
    return object.payload.length;
  }

  /** The decoded value stored at p. */
  async get(p) {
    let stored;
    try {
      stored = await this.backend.get(p);
    } catch (err) {
      throw new Error(`cannot read stored input '${p}' (${this._describe(err)})`);
    }
    try {
      return format.decodeObject(stored.bytes, stored.header, this.encoding);
    } catch (err) {
      throw new Error(`cannot decode stored input '${p}': ${err.message}`);
    }
  }

  _describe(err) {
    if (err.code === 'ENOENT') return `no such file under ${this.settings.root}`;
    if (err.code) return `${this.settings.type}: ${err.message}`; // Node's message starts with the code
    return err.message;
  }
}

module.exports = { Storage, storageSettings, STORAGE_ENCODINGS };
