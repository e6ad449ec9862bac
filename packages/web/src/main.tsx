// Entry point: the store talks to the node that served this page (same origin), the app renders.
import { render } from 'preact';
import { App } from './app.js';
import { Store } from './store.js';
import './styles.css';

const store = new Store(location.origin);
render(<App store={store} />, document.getElementById('app')!);
void store.boot();
