// Console entry: who is signed in, the navigation their roles allow, and a hash router
// (#/approvals, #/sessions?…, #/session/ID, #/charts, #/integrity) over the page modules.
import { ApiError, get, post, setCsrf } from './api.js';
import { clear, h, heading } from './dom.js';
import * as approvals from './approvals.js';
import * as sessions from './sessions.js';
import * as session from './session.js';
import * as charts from './charts.js';
import * as integrity from './integrity.js';

const main = document.getElementById('main');
const flashEl = document.getElementById('flash');
let cleanup = null;

function flash(message) {
  flashEl.textContent = message;
  flashEl.hidden = !message;
}

function signInPage(text) {
  clear(main).append(heading('Sign in'), h('p', {}, text), h('p', {}, h('a.button#sign-in', { href: '/ui/login' }, 'Sign in with your identity provider')));
}

function route(me) {
  const ctx = {
    me,
    /** admin may do everything a reviewer or an auditor may. */
    can: (role) => me.roles.includes('admin') || me.roles.includes(role),
    flash,
  };
  const hash = location.hash.replace(/^#/, '') || '/approvals';
  const [path, qs] = hash.split('?');
  const params = new URLSearchParams(qs ?? '');
  if (cleanup) cleanup();
  cleanup = null;
  flash('');
  clear(main);
  for (const a of document.querySelectorAll('#nav a')) {
    if (path.startsWith(`/${a.dataset.section}`) || (path.startsWith('/approval/') && a.dataset.section === 'approvals')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  let m;
  if (path === '/approvals') cleanup = approvals.render(main, ctx, params);
  else if ((m = /^\/approval\/([0-9a-f-]{36})$/.exec(path))) cleanup = approvals.render(main, ctx, new URLSearchParams({ status: 'all', id: m[1] }));
  else if (path === '/sessions') sessions.render(main, ctx, params);
  else if ((m = /^\/session\/([0-9a-f-]{36})$/.exec(path))) cleanup = session.render(main, ctx, m[1]);
  else if (path === '/charts') charts.render(main, ctx, params);
  else if (path === '/integrity') integrity.render(main, ctx);
  else main.append(heading('Not found'), h('p', {}, h('a', { href: '#/approvals' }, 'Go to the approvals queue')));
}

async function boot() {
  let me;
  try {
    me = await get('/ui/api/me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signInPage('Sign in to review approvals, sessions and the audit trail.');
    clear(main).append(heading('Console unavailable'), h('p', {}, e.message));
    return;
  }
  setCsrf(me.csrf);
  document.getElementById('who-name').textContent = `${me.subject} (${me.roles.join(', ')})`;
  document.getElementById('who').hidden = false;
  const nav = document.getElementById('nav');
  for (const a of nav.querySelectorAll('a[data-role]')) {
    const role = a.dataset.role;
    a.parentElement.hidden = !(me.roles.includes('admin') || me.roles.includes(role));
  }
  nav.hidden = false;
  document.getElementById('logout').addEventListener('click', async () => {
    try {
      await post('/ui/logout');
    } catch (e) {
      return flash(`Sign-out failed: ${e.message}`);
    }
    if (cleanup) cleanup();
    cleanup = null;
    document.getElementById('who').hidden = true;
    nav.hidden = true;
    signInPage('You are signed out.');
  });
  window.addEventListener('gatehouse:signed-out', () => {
    if (cleanup) cleanup();
    cleanup = null;
    document.getElementById('who').hidden = true;
    nav.hidden = true;
    signInPage('Your console session has ended. Sign in again to continue.');
  });
  window.addEventListener('hashchange', () => route(me));
  route(me);
}

void boot();
