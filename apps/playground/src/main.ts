const app = document.querySelector('#app');
if (app) app.textContent = 'dcae playground: coming with the web runtime adapter.';
