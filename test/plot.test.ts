import { describe, expect, test } from 'vitest';
import { lineChart, niceTicks, tickLabels } from '../bench/plot.js';

describe('SVG line chart (issue 14)', () => {
  test('round ticks from 0, labelled with the decimals the step needs', () => {
    expect(niceTicks(1.07)).toEqual([0, 0.5, 1, 1.5]);
    expect(tickLabels(niceTicks(1.07))).toEqual(['0.0', '0.5', '1.0', '1.5']);
    expect(niceTicks(37)).toEqual([0, 10, 20, 30, 40]);
    expect(tickLabels(niceTicks(16))).toEqual(['0', '5', '10', '15', '20']);
    expect(niceTicks(0)).toEqual([0, 1]);
  });

  test('the legend lies right of the plotting area, so no curve passes under it', () => {
    const svg = lineChart({
      xLabel: 'epoch', yLabel: 'loss',
      series: [{ name: 'train loss', color: '#000', points: [[0, 2.3], [1, 0.4], [2, 0.3]] }, { name: 'test acc', color: '#111', points: [[1, 0.8], [2, 0.9]] }],
    });
    const xs = [...svg.matchAll(/points="([^"]*)"/g)].flatMap((m) => m[1].split(' ').map((p) => Number(p.split(',')[0])));
    const legendX = [...svg.matchAll(/<text x="([\d.]+)"[^>]*>(train loss|test acc)</g)].map((m) => Number(m[1]));
    expect(legendX).toHaveLength(2);
    expect(Math.min(...legendX)).toBeGreaterThan(Math.max(...xs));
    expect(svg).toContain('>2.5<'); // the y axis ends on a round tick above the data
  });
});
