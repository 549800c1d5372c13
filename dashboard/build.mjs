// Bundles the dashboard into dist/, which the server embeds (src/api/dashboard.rs).
// `npm run build` after changing src/; CI rebuilds and checks dist/ is what the sources make.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';

// The licenses of what the bundle holds, at its end (MIT both).
const licenses = ['preact', '@dagrejs/dagre', '@dagrejs/graphlib']
  .map((name) => `${name}:\n${readFileSync(`node_modules/${name}/LICENSE`, 'utf8').trim()}`)
  .join('\n\n');

mkdirSync('dist', { recursive: true });
await esbuild.build({
  entryPoints: { app: 'src/main.jsx' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: 'dist',
  legalComments: 'none',
  footer: { js: `/*! Bundled packages and their licenses:\n\n${licenses}\n*/` },
  logLevel: 'info',
});
copyFileSync('src/index.html', 'dist/index.html');
