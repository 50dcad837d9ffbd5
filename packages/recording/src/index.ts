export { createRecorder, readRecording, recordingPath, type RecorderOptions, type Recording } from './recorder.js';
export {
  AsciicastWriter,
  RecordingBudget,
  asciicastName,
  listAsciicasts,
  readAsciicast,
  type AsciicastEvent,
  type AsciicastHeader,
  type AsciicastOptions,
  type AsciicastSummary,
} from './asciicast.js';
