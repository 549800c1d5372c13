// The dashboard's shell: the navigation, the hash routes (#/jobs/ID,
// #/pipelines/NAME, …) and the API token prompt, shown when the server
// answers 401.

import { render } from 'preact';
import './style.css';
import { useEffect, useState } from 'preact/hooks';
import { setToken, setUnauthorizedHandler, token } from './api.js';
import { JobsPage } from './pages/jobs.jsx';
import { JobPage } from './pages/job.jsx';
import { PipelinesPage, PipelinePage } from './pages/pipelines.jsx';
import { AlgorithmsPage, AlgorithmPage } from './pages/algorithms.jsx';
import { WorkersPage } from './pages/workers.jsx';

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

const PAGES = [
  ['jobs', 'Jobs'],
  ['pipelines', 'Pipelines'],
  ['algorithms', 'Algorithms'],
  ['workers', 'Workers'],
];

function route(hash) {
  const [page = 'jobs', ...rest] = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const arg = rest.join('/');
  switch (page) {
    case 'jobs':
      return arg ? <JobPage jobId={arg} /> : <JobsPage />;
    case 'pipelines':
      return arg ? <PipelinePage name={arg} /> : <PipelinesPage />;
    case 'algorithms':
      return arg ? <AlgorithmPage name={arg} /> : <AlgorithmsPage />;
    case 'workers':
      return <WorkersPage />;
    default:
      return <p class="empty">No page “{page}”. <a href="#/jobs">Jobs</a></p>;
  }
}

function TokenPrompt({ message, onDone }) {
  const [value, setValue] = useState(token());
  const submit = (e) => {
    e.preventDefault();
    setToken(value.trim());
    onDone();
  };
  return (
    <div class="modal-back">
      <form class="modal" onSubmit={submit}>
        <h2>API token</h2>
        <p>{message || 'This server needs an API token.'}</p>
        <p class="hint">
          A line of the server's <code>--auth-token-file</code>; a <code>read</code> token shows everything, a <code>write</code> token
          also runs and stops. It is kept in this browser only.
        </p>
        <input type="password" autofocus name="token" value={value} onInput={(e) => setValue(e.target.value)} placeholder="token" />
        <div class="actions">
          <button type="submit" class="primary">Use token</button>
        </div>
      </form>
    </div>
  );
}

function App() {
  const hash = useHash();
  const [asked, setAsked] = useState(null);
  const [generation, setGeneration] = useState(0);
  useEffect(() => setUnauthorizedHandler((message) => setAsked(message)), []);
  const page = (hash.replace(/^#\/?/, '').split('/')[0] || 'jobs').toLowerCase();
  return (
    <>
      <header class="top">
        <a class="brand" href="#/jobs">
          DistributedKube
        </a>
        <nav>
          {PAGES.map(([id, label]) => (
            <a href={`#/${id}`} class={page === id ? 'active' : ''}>
              {label}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        <a href="/api/v1/docs/" target="_blank" rel="noopener">
          API
        </a>
        <button class="link" onClick={() => setAsked('')}>
          {token() ? 'Token ✓' : 'Token'}
        </button>
      </header>
      <main key={`${hash}#${generation}`}>{route(hash)}</main>
      {asked !== null && (
        <TokenPrompt
          message={asked}
          onDone={() => {
            setAsked(null);
            setGeneration(generation + 1);
          }}
        />
      )}
    </>
  );
}

render(<App />, document.getElementById('app'));
