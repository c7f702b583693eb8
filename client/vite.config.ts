import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// In development (`npm run dev`) Vite serves the client and proxies API, MCP, sign-in,
// OAuth and health calls to the server on port 3000 (the session cookie is per host, not
// per port, so the sign-in made through the proxy holds for the app on :5173).
export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: {
    port: 5173,
    proxy: {
      '/api': 'http://127.0.0.1:3000',
      '/mcp': 'http://127.0.0.1:3000',
      '/auth': 'http://127.0.0.1:3000',
      '/oauth': 'http://127.0.0.1:3000',
      '/.well-known': 'http://127.0.0.1:3000',
      '/healthz': 'http://127.0.0.1:3000',
      '/readyz': 'http://127.0.0.1:3000',
      '/socket.io': { target: 'http://127.0.0.1:3000', ws: true },
    },
  },
});
